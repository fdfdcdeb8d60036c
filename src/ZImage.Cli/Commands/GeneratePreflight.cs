using Microsoft.Extensions.Logging;
using ZImage.Runtime.Models.Configuration;
using ZImage.Runtime.Models.Safetensors;
using ZImage.Runtime.Pipeline;

namespace ZImage.Cli.Commands;

/// <summary>
/// The checks <c>generate</c> runs before it loads anything: the output path is writable, the model folder is a
/// complete, consistent checkpoint (the same check as <c>zimage check-model</c>), the latents file is readable. Each
/// failure is a <see cref="CliInputException"/> naming the option (exit code 2).
/// </summary>
internal static class GeneratePreflight
{
    /// <summary>Checks that <paramref name="outPath"/> names a file that can be written (creating its folder); returns it.</summary>
    public static string CheckOutput(string outPath)
    {
        if (string.IsNullOrWhiteSpace(outPath))
            throw new CliInputException("--out", "--out is empty; allowed: a .png file path.");
        string full;
        try { full = Path.GetFullPath(outPath); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new CliInputException("--out", $"--out '{outPath}' is not a valid path ({e.Message}).", e);
        }
        if (Directory.Exists(full) || outPath.EndsWith(Path.DirectorySeparatorChar) || outPath.EndsWith(Path.AltDirectorySeparatorChar))
            throw new CliInputException("--out", $"--out '{outPath}' is a directory; allowed: a file path such as {Path.Combine(outPath, "zimage.png")}.");
        string folder = Path.GetDirectoryName(full)!;
        bool existed = File.Exists(full);
        try
        {
            Directory.CreateDirectory(folder);
            // Open for writing without truncating, so an existing file is untouched until the image is ready.
            using (new FileStream(full, FileMode.OpenOrCreate, FileAccess.Write, FileShare.ReadWrite)) { }
            if (!existed) File.Delete(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliInputException("--out", $"--out '{outPath}' cannot be written ({e.Message}); allowed: a writable file path.", e);
        }
        return outPath;
    }

    /// <summary>Runs <see cref="CheckpointCheck"/> on <paramref name="dir"/> and throws its first problem.</summary>
    public static void CheckModel(string dir)
    {
        if (File.Exists(dir))
            throw new CliInputException("--model", $"--model '{dir}' is a file; allowed: a diffusers-format Z-Image checkpoint folder (model_index.json, transformer/, text_encoder/, vae/, ...).");
        if (!Directory.Exists(dir))
            throw new CliInputException("--model", $"--model '{dir}' does not exist; allowed: a diffusers-format Z-Image checkpoint folder.");
        var report = CheckpointCheck.Run(dir);
        if (report.IsValid) return;
        string more = report.Problems.Count > 1 ? $" (+{report.Problems.Count - 1} more problems; run 'zimage check-model {dir}')" : "";
        throw new CliInputException("--model", $"--model: {report.Problems[0].Message}{more}");
    }

    /// <summary>Reads the initial latents (tensor 'latents', 'initial_latents' or the only tensor) from a safetensors file.</summary>
    public static LatentTensor ReadLatents(string file)
    {
        const string Allowed = "allowed: a .safetensors file with one float tensor [1,16,H/8,W/8] (named 'latents', 'initial_latents' or the only tensor)";
        if (Directory.Exists(file)) throw new CliInputException("--latents", $"--latents '{file}' is a directory; {Allowed}.");
        if (!File.Exists(file)) throw new CliInputException("--latents", $"--latents '{file}' does not exist; {Allowed}.");
        if (new FileInfo(file).Length == 0) throw new CliInputException("--latents", $"--latents '{file}' is empty; {Allowed}.");
        try
        {
            using var reader = SafetensorsFile.Open(file);
            string name = reader.Contains("latents") ? "latents" : reader.Contains("initial_latents") ? "initial_latents"
                : reader.TensorNames.Count == 1 ? reader.TensorNames[0]
                : throw new CliInputException("--latents", $"--latents '{file}' holds {reader.TensorNames.Count} tensors ({string.Join(", ", reader.TensorNames.Take(5))}) and none is named 'latents' or 'initial_latents'; {Allowed}.");
            var info = reader.GetInfo(name);
            int[] shape = info.Shape.Length == 3 ? [1, .. info.Shape] : info.Shape;
            return new LatentTensor(reader.ReadSingles(name), shape);
        }
        catch (CliInputException) { throw; }
        // A corrupt header can surface as SafetensorsFormatException or as a reader/argument error: all are a bad file.
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new CliInputException("--latents", $"--latents '{file}' is not a usable safetensors file: {e.Message.Split('\n')[0]} ({Allowed}).", e);
        }
    }

    /// <summary><c>ZIMAGE_LOG_LEVEL</c> (Trace..Critical) if set, else no console logging.</summary>
    public static LogLevel LogLevelFromEnvironment() =>
        Enum.TryParse(Environment.GetEnvironmentVariable("ZIMAGE_LOG_LEVEL"), ignoreCase: true, out LogLevel level) ? level : LogLevel.None;
}
