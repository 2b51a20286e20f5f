namespace Pipeline.Inference.Runtime;

/// <summary>
/// Reusable input buffers for model calls. The model is shared; each calling actor owns one
/// workspace, so no buffer is ever touched by two threads.
/// </summary>
public sealed class StepWorkspace
{
    internal long[] InputIds = [];
    internal long[] PositionIds = [];
    internal long[] AttentionMask = [];
    internal float[][] PastKeys = [];
    internal float[][] PastValues = [];

    internal static T[] Ensure<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length) buffer = new T[Math.Max(length, buffer.Length * 3 / 2)];
        return buffer;
    }
}
