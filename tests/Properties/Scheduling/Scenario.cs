using Pipeline.Actors.Scheduling;
using Pipeline.Wiring;

namespace Pipeline.Properties.Scheduling;

/// <summary>
/// Where a request is cancelled from inside the pipeline (by the <see cref="StageCanceller"/>
/// hook): at the <see cref="Nth"/> time it reaches <see cref="Stage"/>.
/// </summary>
public sealed record StageCancel(CancelStage Stage, int Nth)
{
    public override string ToString() => $"{Stage} #{Nth}";
}

/// <summary>The stages of a request's life a scenario cancels it at.</summary>
public enum CancelStage
{
    /// <summary>Right after its submission returns: in the admission queue, or already being tokenized (the hook tells which).</summary>
    Queued,
    /// <summary>As tokenize hands it to prefill.</summary>
    Tokenizing,
    /// <summary>Just before the Nth chunk of a prompt that has more chunks after it.</summary>
    MidPrefill,
    /// <summary>As prefill hands it to sample.</summary>
    Prefilled,
    /// <summary>As sample hands its Nth step back to decode: between two decode steps.</summary>
    BetweenSteps,
    /// <summary>As decode hands its Nth step to sample.</summary>
    Stepped,
    /// <summary>As detokenize delivers its Nth event to the caller.</summary>
    Detokenizing,
}

/// <summary>The work a scenario makes fail for a request (by the <see cref="StageCanceller"/> hook), at its Nth time.</summary>
public enum FailStage
{
    /// <summary>A prefill model call holding one of its chunks: every prompt of that call fails.</summary>
    PrefillCall,
    /// <summary>A decode model call holding it: every sequence of that step fails.</summary>
    DecodeCall,
    /// <summary>Its draw: it alone fails.</summary>
    Draw,
}

/// <summary>Where a request's work is made to fail: the <see cref="Nth"/> time it reaches <see cref="Stage"/>.</summary>
public sealed record StageFailure(FailStage Stage, int Nth)
{
    public override string ToString() => $"{Stage} #{Nth}";
}

/// <summary>One generated request of a scenario.</summary>
public sealed record RequestCase(string Prompt, bool Unicode, float Temperature, float TopP, int TopK, float MinP, float RepetitionPenalty, ulong Seed, int MaxTokens, string[] Stop, int ArrivalMs, int? CancelAfterTokens, StageCancel? CancelAt = null, StageFailure? FailAt = null)
{
    /// <summary>Whether the scenario cancels this request (by its reader, or inside the pipeline).</summary>
    public bool MayBeCancelled => CancelAfterTokens is not null || CancelAt is not null;

    public GenerationRequest ToRequest() => new()
    {
        Prompt = Prompt, Sampling = new() { Temperature = Temperature, TopP = TopP, TopK = TopK, MinP = MinP, RepetitionPenalty = RepetitionPenalty },
        Seed = Seed, MaxTokens = MaxTokens, Stop = Stop, CaptureLogits = true,
    };

    /// <summary>Identifies the request (not its arrival or cancellation) for the solo-run memo.</summary>
    public string Key => $"{Prompt}\u0001{Temperature}\u0001{TopP}\u0001{TopK}\u0001{MinP}\u0001{RepetitionPenalty}\u0001{Seed}\u0001{MaxTokens}\u0001{string.Join('\u0002', Stop)}";

    public override string ToString()
    {
        var sampling = Temperature == 0 ? "greedy" : $"T={Temperature} top_p={TopP} top_k={TopK} min_p={MinP} rep={RepetitionPenalty} seed={Seed}";
        var stop = Stop.Length == 0 ? "" : $" stop=[{string.Join(", ", Stop.Select(s => $"\"{s}\""))}]";
        var cancel = CancelAfterTokens is { } k ? $" CANCELLED after {k} tokens" : CancelAt is { } at ? $" CANCELLED at {at}" : FailAt is { } f ? $" FAILS at {f}" : "";
        return $"\"{Escape(Prompt)}\" {sampling} max={MaxTokens}{stop} at +{ArrivalMs}ms{cancel}";
    }

    private static string Escape(string s) =>
        string.Concat(s.EnumerateRunes().Select(r => r.Value is >= 0x20 and < 0x7F and not '"' ? r.ToString() : $"\\u{{{r.Value:X}}}"));
}

/// <summary>A generated run: requests, how they arrive, and the shape of the pipeline they meet.</summary>
public sealed record Scenario(RequestCase[] Requests, int MaxBatch, int MaxPrefillBatch, int[] Capacities, int Threads, ulong ScheduleSeed, int YieldPercent, int DelayPercent, int SplitPercent)
{
    /// <summary>The host's KV budget in cache positions (times the model's bytes per position), or null for the default.</summary>
    public int? KvBudgetPositions { get; init; }

    internal PipelineSettings Settings(ISchedulingHook hook) => new()
    {
        MaxBatch = MaxBatch,
        MaxPrefillBatch = MaxPrefillBatch,
        AdmissionCapacity = Capacities[0],
        PrefillCapacity = Capacities[1],
        PrefilledCapacity = Capacities[2],
        JoinCapacity = Capacities[3],
        StepCapacity = Capacities[4],
        DetokenizeCapacity = Capacities[5],
        Hook = hook,
    };

    public override string ToString() =>
        $"max batch {MaxBatch}, prefill batch {MaxPrefillBatch}, capacities [{string.Join(',', Capacities)}], {Threads} thread(s), {(KvBudgetPositions is { } kv ? $"KV budget {kv} positions" : "default KV budget")}, schedule seed {ScheduleSeed} (yield {YieldPercent}%, delay {DelayPercent}%, split {SplitPercent}%)\n"
        + string.Join("\n", Requests.Select((r, i) => $"  r{i}: {r}"));
}
