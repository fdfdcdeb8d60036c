namespace ZImage.Models.Tests.Infrastructure;

/// <summary>A fresh folder under the system temp directory, deleted on dispose.</summary>
public sealed class TempDirectory : IDisposable
{
    /// <summary>Creates the folder.</summary>
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "zimage-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>A path inside the folder.</summary>
    public string File(string name) => System.IO.Path.Combine(Path, name);

    /// <summary>Copies a folder tree (read-only fixture files become writable copies).</summary>
    public string CopyTree(string source, string name)
    {
        string target = File(name);
        foreach (string dir in Directory.GetDirectories(source, "*", SearchOption.AllDirectories))
            Directory.CreateDirectory(System.IO.Path.Combine(target, System.IO.Path.GetRelativePath(source, dir)));
        Directory.CreateDirectory(target);
        foreach (string file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            string dest = System.IO.Path.Combine(target, System.IO.Path.GetRelativePath(source, file));
            System.IO.File.Copy(file, dest);
            System.IO.File.SetAttributes(dest, FileAttributes.Normal);
            if (!OperatingSystem.IsWindows()) System.IO.File.SetUnixFileMode(dest, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        return target;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { /* a still-mapped file on some platforms; the OS temp cleaner gets it */ }
    }
}
