namespace ZImage.Tests.Infrastructure;

/// <summary>
/// Locates the shared fixtures: <c>../shared/fixtures</c> beside the checkout (found by walking up to
/// <c>ZImage.sln</c>), and the reference folder from <c>ZIMAGE_REFERENCE_DIR</c> when it is set.
/// </summary>
public static class FixturePaths
{
    private static readonly Lazy<string> RepoRootLazy = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ZImage.sln")))
            dir = dir.Parent;
        return dir?.FullName ?? throw new DirectoryNotFoundException($"No ZImage.sln above {AppContext.BaseDirectory}.");
    });

    /// <summary>The checkout root (the folder holding ZImage.sln).</summary>
    public static string RepoRoot => RepoRootLazy.Value;

    /// <summary><c>../shared/fixtures</c> relative to the checkout.</summary>
    public static string FixturesDir
    {
        get
        {
            string dir = Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures"));
            return Directory.Exists(dir) ? dir : throw new DirectoryNotFoundException($"Shared fixtures not found at {dir}; CI keeps them beside the checkout.");
        }
    }

    /// <summary>The tiny random checkpoint.</summary>
    public static string TinyCheckpoint => Path.Combine(FixturesDir, "tiny-zimage");

    /// <summary>The reference outputs: <c>ZIMAGE_REFERENCE_DIR</c> if set, else the shared tiny-zimage-reference.</summary>
    public static string ReferenceDir =>
        Environment.GetEnvironmentVariable("ZIMAGE_REFERENCE_DIR") is { Length: > 0 } env ? Path.GetFullPath(env) : Path.Combine(FixturesDir, "tiny-zimage-reference");

    /// <summary>
    /// The edit references (VAE encode, tiled decode, img2img, inpaint, LoRA): <c>ZIMAGE_EDIT_REFERENCE_DIR</c> if set,
    /// else the shared tiny-zimage-edit-reference.
    /// </summary>
    public static string EditReferenceDir =>
        Environment.GetEnvironmentVariable("ZIMAGE_EDIT_REFERENCE_DIR") is { Length: > 0 } env ? Path.GetFullPath(env) : Path.Combine(FixturesDir, "tiny-zimage-edit-reference");

    /// <summary>
    /// The public edit references' LoRA files (<c>lora_diffusers</c>, <c>lora_kohya</c>, <c>lora_diffusion_model</c>),
    /// whatever <c>ZIMAGE_EDIT_REFERENCE_DIR</c> says: tests that are not parity tests rely on their exact content.
    /// </summary>
    public static string PublicLoraFixtures => Path.Combine(FixturesDir, "tiny-zimage-edit-reference", "lora");

    /// <summary>The allocator traces and expected statistics.</summary>
    public static string AllocatorFixtures => Path.Combine(FixturesDir, "allocator");
}
