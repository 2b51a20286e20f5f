using System.Text;

namespace Pipeline.Integration.Server.Fuzz;

/// <summary>How a fuzzed request authenticates: the right key, none, or a wrong one.</summary>
public enum FuzzAuth
{
    Key,
    NoKey,
    WrongKey,
}

/// <summary>
/// One generated HTTP request: method, path, body bytes (possibly not JSON, not UTF-8, or absent),
/// content type and how it authenticates. <see cref="Category"/> names the generator that made
/// it; <see cref="Tags"/> name what it holds (a field given a value of some kind, a corruption),
/// so the test can count what it explored.
/// </summary>
public sealed record FuzzRequest(string Method, string Path, byte[]? Body, string? ContentType, bool Chunked, FuzzAuth Auth, string Category, IReadOnlyList<string> Tags)
{
    // What FsCheck prints for a failing case: every byte readable, long bodies cut.
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(Category).Append(": ").Append(Method).Append(' ').Append(Path)
            .Append(" content-type=").Append(ContentType ?? "(none)")
            .Append(Chunked ? " chunked" : "").Append(" auth=").Append(Auth)
            .Append(" tags=[").Append(string.Join(", ", Tags)).Append("] body=");
        if (Body is null) return text.Append("(none)").ToString();
        text.Append('(').Append(Body.Length).Append(" bytes) ");
        int shown = Math.Min(Body.Length, 1500);
        for (int i = 0; i < shown; i++)
        {
            byte b = Body[i];
            if (b is >= 0x20 and < 0x7F) text.Append((char)b);
            else text.Append(System.Globalization.CultureInfo.InvariantCulture, $"\\x{b:X2}");
        }
        if (shown < Body.Length) text.Append("...");
        return text.ToString();
    }
}
