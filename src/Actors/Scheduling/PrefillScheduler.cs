namespace Pipeline.Actors.Scheduling;

/// <summary>One prompt's share of a prefill call: <see cref="Length"/> prompt positions from <see cref="Start"/>.</summary>
internal readonly record struct PrefillChunk(Sequence Sequence, int Start, int Length);

/// <summary>
/// The prefill actor's rules, without the model: which prompts are being prefilled (at most
/// <c>maxPrefillBatch</c>), which of them share the next model call, and where each is cut.
/// Chunks end on multiples of <c>block</c> counted from the prompt's start (or at its end), so
/// where a prompt is cut depends only on the prompt, never on load. Prompts take turns: one
/// that is not finished goes to the back, so a long prompt never holds up a short one.
/// </summary>
internal sealed class PrefillScheduler(int maxPrefillBatch, int block, ISchedulingHook hook)
{
    private readonly List<Sequence> _inProgress = [];

    /// <summary>Prompts admitted and not yet fully prefilled, in turn order.</summary>
    public IReadOnlyList<Sequence> InProgress => _inProgress;

    public bool HasRoom => _inProgress.Count < maxPrefillBatch;

    public void Admit(Sequence sequence) => _inProgress.Add(sequence);

    /// <summary>Removes and returns the prompts whose requests were cancelled.</summary>
    public List<Sequence> RemoveCancelled()
    {
        var cancelled = new List<Sequence>();
        for (int i = _inProgress.Count - 1; i >= 0; i--)
            if (_inProgress[i].IsCancelled)
            {
                cancelled.Add(_inProgress[i]);
                _inProgress.RemoveAt(i);
            }
        return cancelled;
    }

    /// <summary>
    /// The chunks of the next model call, one per chosen prompt in row order. The chosen prompts
    /// leave the turn order until <see cref="Advance"/> puts back the unfinished ones.
    /// </summary>
    public PrefillChunk[] NextCall()
    {
        var (batch, rest) = BatchChoice.Split(hook, HandOff.PrefillChunk, _inProgress);
        _inProgress.Clear();
        _inProgress.AddRange(rest);
        var chunks = new PrefillChunk[batch.Count];
        for (int i = 0; i < chunks.Length; i++)
        {
            var s = batch[i];
            chunks[i] = new PrefillChunk(s, s.Prefilled, ChunkLength(s.Prefilled, s.PromptIds.Length, block));
        }
        return chunks;
    }

    /// <summary>
    /// The call ran: each prompt advances by its chunk; unfinished ones go to the back of the turn
    /// order. Returns the prompts now fully prefilled, in row order.
    /// </summary>
    public List<Sequence> Advance(IReadOnlyList<PrefillChunk> chunks)
    {
        ArgumentNullException.ThrowIfNull(chunks);
        var finished = new List<Sequence>();
        foreach (var chunk in chunks)
        {
            var s = chunk.Sequence;
            s.AdvancePrefill(chunk.Length);
            if (s.Prefilled < s.PromptIds.Length) _inProgress.Add(s); // to the back: round robin
            else finished.Add(s);
        }
        return finished;
    }

    /// <summary>Positions of the next chunk: up to the next multiple of <paramref name="block"/>, or to the prompt's end.</summary>
    public static int ChunkLength(int prefilled, int promptLength, int block) =>
        Math.Min(block - prefilled % block, promptLength - prefilled);
}
