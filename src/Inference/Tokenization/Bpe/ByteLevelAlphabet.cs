namespace Pipeline.Inference.Tokenization.Bpe;

/// <summary>
/// GPT-2's reversible map between bytes and printable characters (bytes_to_unicode): byte-level
/// BPE vocabularies spell every byte as one of these 256 characters, e.g. space as 'Ġ' (U+0120).
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>The character that spells each byte, indexed by byte.</summary>
    private static readonly char[] CharOfByte = BuildCharOfByte();

    /// <summary>Decodes a character of the alphabet back to its byte; -1 for any other character.</summary>
    private static readonly short[] ByteOfChar = BuildByteOfChar(CharOfByte);

    public static char CharOf(byte b) => CharOfByte[b];

    /// <summary>Spells UTF-8 <paramref name="bytes"/> in the alphabet.</summary>
    public static string Spell(ReadOnlySpan<byte> bytes)
    {
        return string.Create(bytes.Length, bytes.ToArray(), static (chars, source) =>
        {
            for (int i = 0; i < source.Length; i++)
            {
                chars[i] = CharOfByte[source[i]];
            }
        });
    }

    /// <summary>
    /// The bytes a piece spells, or false when some character of it is outside the alphabet (as
    /// Hugging Face's ByteLevel decoder does, such a piece then stands for its own UTF-8).
    /// </summary>
    public static bool TryDecode(string piece, out byte[] bytes)
    {
        bytes = new byte[piece.Length];
        for (int i = 0; i < piece.Length; i++)
        {
            char c = piece[i];
            int b = c < ByteOfChar.Length ? ByteOfChar[c] : -1;
            if (b < 0)
            {
                return false;
            }

            bytes[i] = (byte)b;
        }

        return true;
    }

    private static char[] BuildCharOfByte()
    {
        var map = new char[256];
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }

    private static short[] BuildByteOfChar(char[] charOfByte)
    {
        var map = new short[512];
        Array.Fill(map, (short)-1);
        for (int b = 0; b < 256; b++)
        {
            map[charOfByte[b]] = (short)b;
        }

        return map;
    }
}
