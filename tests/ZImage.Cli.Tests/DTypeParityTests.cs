using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Pipeline;
using ZImage.Tests.Infrastructure;

namespace ZImage.Cli.Tests;

/// <summary>
/// Issue 9: <c>--dtype f32</c> reproduces the float32 references through the CLI. The e2e case's own file is the
/// <c>--latents</c> input (its tensor <c>initial_latents</c>); the PNG must match the reference image within the
/// manifest's uint8 tolerance (at most 1 step, at most 1% of the values differing).
/// </summary>
[Collection(CliCollection.Name)]
public sealed class DTypeParityTests
{
    [Fact]
    public async Task GenerateWithDTypeF32ReproducesTheFloat32ReferenceImage()
    {
        string reference = Path.Combine(FixturePaths.ReferenceDir, "e2e", "e2e_64x64.safetensors");
        string png = Path.Combine(Path.GetTempPath(), $"zimage-dtype-{Guid.NewGuid():N}.png");
        try
        {
            // The case's parameters (manifest: prompt, 64x64, 8 steps, guidance 0).
            var run = await CliRunner.RunAsync("generate", "--model", FixturePaths.TinyCheckpoint, "--prompt", "A cat sitting on a windowsill",
                "--width", "64", "--height", "64", "--steps", "8", "--guidance", "0", "--mode", "turbo", "--latents", reference,
                "--dtype", "f32", "--device", "cpu", "--out", png, "--json");

            Assert.True(run.ExitCode == 0, run.Stdout + run.Stderr);
            var ours = PngMetadata.Decode(File.ReadAllBytes(png)).Pixels;
            using var file = SafetensorsFile.Open(reference);
            byte[] expected = file.GetBytes("image_uint8").ToArray();
            Assert.Equal(expected.Length, ours.Length);
            int worst = 0, differing = 0;
            for (int i = 0; i < ours.Length; i++)
            {
                int d = Math.Abs(ours[i] - expected[i]);
                worst = Math.Max(worst, d);
                if (d > 0) differing++;
            }
            Assert.True(worst <= 1, $"max |diff| {worst} > 1");
            Assert.True(differing <= 0.01 * ours.Length, $"{differing} of {ours.Length} values differ");
        }
        finally
        {
            File.Delete(png);
        }
    }
}
