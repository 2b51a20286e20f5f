namespace Pipeline.Inference.Chat;

/// <summary>Python ordering as an <see cref="IComparer{T}"/>, for <c>sort</c>, <c>dictsort</c>, <c>min</c> and <c>max</c> (stable, as <c>sorted</c> is).</summary>
internal sealed class PyComparer : IComparer<object?>
{
    public static readonly PyComparer Instance = new();

    public int Compare(object? x, object? y) => PyOps.Equal(x, y) ? 0 : PyOps.Compare(x, y, "<");
}
