using System.Collections.Concurrent;
using Pipeline.Actors.Scheduling;

namespace Pipeline.Properties.Scheduling;

/// <summary>
/// Cancels requests from inside the pipeline, each at the stage its scenario names, or makes one
/// of a request's model calls or its draw fail, and passes everything else on to the seeded
/// schedule. The host gives a request its id when it is
/// submitted; the hook learns which scenario request that id is at the <see cref="HandOff.Admitted"/>
/// hand-off, which runs inside the submission, where <see cref="Submitting"/> (an async-local set
/// around the submit call) names the request. It counts the stages at which each cancellation
/// actually landed, as the hand-offs it sees afterwards show.
/// </summary>
internal sealed class StageCanceller(SeededSchedule schedule) : ISchedulingHook
{
    private readonly AsyncLocal<int?> _submitting = new();
    private readonly ConcurrentDictionary<long, Planned> _byId = new();
    private readonly ConcurrentDictionary<int, Planned> _byIndex = new();
    private readonly ConcurrentDictionary<int, byte> _failedByInjection = new();
    private readonly ConcurrentDictionary<int, FailStage> _failedAt = new();

    /// <summary>The message of every injected failure.</summary>
    public const string InjectedFailure = "injected failure";

    private sealed class Planned(int index, StageCancel? plan, StageFailure? failure, CancellationTokenSource cancel)
    {
        private readonly ConcurrentDictionary<HandOff, int> _seen = new();
        private readonly ConcurrentDictionary<HandOff, int> _worked = new();
        public int Index { get; } = index;
        public StageCancel? Plan { get; } = plan;
        public StageFailure? Failure { get; } = failure;
        public CancellationTokenSource Cancel { get; } = cancel;
        /// <summary>The stage at which the cancellation landed (null until it did).</summary>
        public CancelStage? Landed { get; set; }
        public bool PassedTokenize { get; set; }
        public bool PassedPrefill { get; set; }
        public int Seen(HandOff point) => _seen.AddOrUpdate(point, 1, (_, n) => n + 1);
        public int Worked(HandOff stage) => _worked.AddOrUpdate(stage, 1, (_, n) => n + 1);
    }

    /// <summary>The scenario request being submitted on this async flow, if any.</summary>
    public int? Submitting
    {
        get => _submitting.Value;
        set => _submitting.Value = value;
    }

    /// <summary>Request <paramref name="index"/> is to be cancelled by <paramref name="cancel"/> at <paramref name="plan"/>, or to fail at <paramref name="failure"/>.</summary>
    public void Plan(int index, StageCancel? plan, StageFailure? failure, CancellationTokenSource cancel) => _byIndex[index] = new Planned(index, plan, failure, cancel);

    /// <summary>Requests that were in a model call or draw made to fail: they may fail with <see cref="InjectedFailure"/>.</summary>
    public IReadOnlySet<int> FailedByInjection => _failedByInjection.Keys.ToHashSet();

    /// <summary>The planned failures that happened, by request index.</summary>
    public IReadOnlyDictionary<int, FailStage> FailedAt => new Dictionary<int, FailStage>(_failedAt);

    /// <summary>
    /// For <see cref="CancelStage.Queued"/>: the submission returned, so cancel now; where it lands
    /// (still queued, or being tokenized) is told by what the hook sees next.
    /// </summary>
    public void Submitted(int index)
    {
        if (_byIndex.TryGetValue(index, out var p) && p.Plan?.Stage == CancelStage.Queued) p.Cancel.Cancel();
    }

    /// <summary>The stages at which cancellations landed, by request index (requests it never reached are absent).</summary>
    public IReadOnlyDictionary<int, CancelStage> Landed()
    {
        var landed = new Dictionary<int, CancelStage>();
        foreach (var p in _byIndex.Values)
        {
            // A cancellation after submission that tokenize never handed on was still queued;
            // one that tokenize handed on anyway was being tokenized.
            if (p.Plan?.Stage == CancelStage.Queued && p.Cancel.IsCancellationRequested)
                p.Landed ??= p.PassedTokenize ? null : CancelStage.Queued;
            if (p.Landed is { } stage) landed[p.Index] = stage;
        }
        return landed;
    }

    public async ValueTask BeforeHandOffAsync(HandOff point, long requestId)
    {
        if (point == HandOff.Admitted && Submitting is { } index)
        {
            schedule.IndexOf[requestId] = index;
            if (_byIndex.TryGetValue(index, out var planned)) _byId[requestId] = planned;
        }
        if (_byId.TryGetValue(requestId, out var p)) Reached(p, point);
        await schedule.BeforeHandOffAsync(point, requestId);
    }

    public void BeforeWork(HandOff stage, IReadOnlyList<long> requestIds)
    {
        if (stage == HandOff.PrefillChunk)
            foreach (long id in requestIds)
                if (_byId.TryGetValue(id, out var p) && p.Plan?.Stage == CancelStage.MidPrefill && p.Seen(HandOff.PrefillChunk) == p.Plan.Nth)
                    Fire(p, CancelStage.MidPrefill);
        FailStage? work = stage switch
        {
            HandOff.PrefillChunk => FailStage.PrefillCall,
            HandOff.Stepped => FailStage.DecodeCall,
            HandOff.Sampled => FailStage.Draw,
            _ => null,
        };
        if (work is { } failing)
            foreach (long id in requestIds)
                if (_byId.TryGetValue(id, out var p) && p.Failure is { } failure && failure.Stage == failing && p.Worked(stage) == failure.Nth)
                {
                    // The whole call fails: every request in it may end with this error.
                    foreach (long other in requestIds)
                        if (schedule.IndexOf.TryGetValue(other, out int i)) _failedByInjection[i] = 0;
                    _failedAt[p.Index] = failing;
                    throw new InvalidOperationException($"{InjectedFailure} at {failing} of r{p.Index}");
                }
        ((ISchedulingHook)schedule).BeforeWork(stage, requestIds);
    }

    public IReadOnlyList<int> FormBatch(HandOff kind, IReadOnlyList<long> ready) => schedule.FormBatch(kind, ready);

    private static void Reached(Planned p, HandOff point)
    {
        if (p.Plan is null) return;
        switch (point)
        {
            case HandOff.Tokenized:
                p.PassedTokenize = true;
                if (p.Plan.Stage == CancelStage.Queued && p.Cancel.IsCancellationRequested && p.Landed is null) p.Landed = CancelStage.Tokenizing;
                if (p.Plan.Stage == CancelStage.Tokenizing) Fire(p, CancelStage.Tokenizing);
                break;
            case HandOff.Prefilled:
                p.PassedPrefill = true;
                // Cancelled before the last chunk ran: the prompt had no chunk after it, so this was the end of prefill.
                if (p.Landed == CancelStage.MidPrefill) p.Landed = CancelStage.Prefilled;
                if (p.Plan.Stage == CancelStage.Prefilled) Fire(p, CancelStage.Prefilled);
                break;
            case HandOff.Sampled when p.Plan.Stage == CancelStage.BetweenSteps:
                if (p.Seen(point) == p.Plan.Nth) Fire(p, CancelStage.BetweenSteps);
                break;
            case HandOff.Stepped when p.Plan.Stage == CancelStage.Stepped:
                if (p.Seen(point) == p.Plan.Nth) Fire(p, CancelStage.Stepped);
                break;
            case HandOff.Delivered when p.Plan.Stage == CancelStage.Detokenizing:
                if (p.Seen(point) == p.Plan.Nth) Fire(p, CancelStage.Detokenizing);
                break;
        }
    }

    private static void Fire(Planned p, CancelStage stage)
    {
        if (p.Cancel.IsCancellationRequested) return;
        p.Landed = stage;
        p.Cancel.Cancel();
    }
}
