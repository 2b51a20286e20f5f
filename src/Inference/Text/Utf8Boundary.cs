namespace Pipeline.Inference.Text;

/// <summary>Where a UTF-8 byte run can be cut without splitting a character.</summary>
internal static class Utf8Boundary
{
    /// <summary>The length of the longest prefix that does not end inside a multi-byte character.</summary>
    public static int CompletePrefix(ReadOnlySpan<byte> bytes)
    {
        for (int back = 1; back <= Math.Min(4, bytes.Length); back++)
        {
            byte b = bytes[^back];
            if ((b & 0xC0) == 0x80) continue; // continuation byte: keep looking for the lead
            int needed = b < 0x80 ? 1 : (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
            return needed > back ? bytes.Length - back : bytes.Length;
        }
        return bytes.Length;
    }
}
