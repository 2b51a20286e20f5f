namespace Pipeline.Cli;

/// <summary>
/// The loop of the JSON-lines commands (<c>tokenize -</c>, <c>chat-template -</c>): one answer line
/// per non-empty input line, in order; the exit code says whether any line failed.
/// </summary>
internal static class JsonLinesLoop
{
    public static async Task<int> RunAsync(Func<string, (string Output, bool Failed)> answer, CancellationToken cancellation)
    {
        int failures = 0;
        while (await Console.In.ReadLineAsync(cancellation) is { } line)
        {
            if (line.Length == 0) continue;
            var (output, failed) = answer(line);
            if (failed) failures++;
            Console.WriteLine(output);
        }
        return failures == 0 ? 0 : 1;
    }
}
