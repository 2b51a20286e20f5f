using System.Runtime.InteropServices;

namespace Pipeline.Testing;

/// <summary>Bit-for-bit comparison of floats (NaN payloads and the sign of zero included).</summary>
internal static class Bits
{
    public static bool Equal(ReadOnlySpan<float> a, ReadOnlySpan<float> b) =>
        MemoryMarshal.AsBytes(a).SequenceEqual(MemoryMarshal.AsBytes(b));
}
