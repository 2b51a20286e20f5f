using Pipeline.Inference.Sampling;
using Pipeline.Inference.Text;
using static Pipeline.Inference.Text.ExceptionText;

namespace Pipeline.Cli;

/// <summary>Turns any failure into one clear line on stderr and a non-zero exit code; never a stack trace.</summary>
internal static class CliErrors
{
    public static async Task<int> Guard(Func<Task<int>> action)
    {
        try
        {
            return await action();
        }
        catch (Exception e) when (e is InvalidRequestException or ArgumentException or FileNotFoundException or DirectoryNotFoundException or InvalidDataException or IOException or InvalidOperationException or FormatException)
        {
            Console.Error.WriteLine($"error: {Describe(e)}");
            return 1;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("error: cancelled");
            return 130;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"error: {e.GetType().Name}: {FirstLine(e.Message)}");
            return 1;
        }
    }

    public static string Describe(Exception e) => e switch
    {
        ArgumentException ae => FirstLine(ExceptionText.WithoutParameterSuffix(ae)),
        _ => FirstLine(e.Message),
    };
}
