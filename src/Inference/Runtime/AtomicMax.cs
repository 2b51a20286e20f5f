namespace Pipeline.Inference.Runtime;

/// <summary>Raises a shared maximum without a lock.</summary>
internal static class AtomicMax
{
    public static void Raise(ref long maximum, long value)
    {
        long seen;
        while (value > (seen = Interlocked.Read(ref maximum)) && Interlocked.CompareExchange(ref maximum, value, seen) != seen) { }
    }
}
