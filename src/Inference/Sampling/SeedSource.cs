using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Pipeline.Inference.Sampling;

/// <summary>Chooses a seed for a request that did not give one, so it can still be reported and replayed.</summary>
internal static class SeedSource
{
    /// <summary>64 bits from the operating system's cryptographic generator: thread-safe, no shared state.</summary>
    public static ulong NewSeed()
    {
        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        RandomNumberGenerator.Fill(bytes);
        return BinaryPrimitives.ReadUInt64LittleEndian(bytes);
    }
}
