using System.Diagnostics;
using System.Threading.Channels;
using Pipeline.Actors;
using Pipeline.Actors.Scheduling;
using Pipeline.Actors.Supervision;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Integration;

/// <summary>
/// The sample actor alone, between channels the test holds: a fault in its parallel draw names
/// the real exception, and a channel that closes under it ends its loop instead of spinning.
/// </summary>
public sealed class SampleActorTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);

    // At or above the vocabulary from which the actor draws a step's rows in parallel.
    private const int Vocabulary = 4096;

    private sealed class Harness : IDisposable
    {
        public Channel<PrefillDone> Prefilled { get; } = Channel.CreateUnbounded<PrefillDone>();
        public Channel<StepDone> Steps { get; } = Channel.CreateBounded<StepDone>(1);
        public Channel<StepSampled> Replies { get; } = Channel.CreateBounded<StepSampled>(1);
        public Channel<Sequence> Joins { get; } = Channel.CreateBounded<Sequence>(1);
        public Channel<Emission> Detokenize { get; } = Channel.CreateUnbounded<Emission>();
        public FaultBoundary Boundary { get; } = new();

        public Task Start(ISchedulingHook hook) => Task.Run(new SampleActor(
            Prefilled.Reader, Steps.Reader, Replies.Writer, Joins.Writer, Detokenize.Writer,
            new FlatTokenizer(), hook, contextLength: 512, new PipelineCounters(), Boundary).RunAsync);

        /// <summary>Stops an actor that would otherwise never end (the guard under test removed): aborts the pipeline.</summary>
        public void Abort() => Boundary.Report(ActorName.Decode, new InvalidOperationException("the test is over"), []);

        public void Dispose() => Boundary.Dispose();
    }

    private static Sequence Greedy(long id)
    {
        var request = new GenerationRequest { PromptIds = [1, 7], MaxTokens = 8, Sampling = new() { Temperature = 0 } };
        var sequence = new Sequence(new AdmittedRequest(id, request, 0, new NullSink(), Stopwatch.GetTimestamp()), CancellationToken.None);
        sequence.Tokenized([1, 7]);
        return sequence;
    }

    [Fact]
    public async Task A_draw_that_throws_in_the_parallel_step_is_reported_as_its_own_exception_not_an_aggregate()
    {
        using var harness = new Harness();
        var hook = new StageHook { OnWork = (stage, _) => { if (stage == HandOff.Sampled) throw new InvalidCastException("injected"); } };
        var run = harness.Start(hook);
        try
        {
            await harness.Steps.Writer.WriteAsync(new StepDone([Greedy(1), Greedy(2), Greedy(3)], new float[3 * Vocabulary]));
            var fault = await harness.Boundary.Faulted.WaitAsync(Bound);
            Assert.IsType<InvalidCastException>(fault.Error);
            Assert.Equal("the sample actor failed (InvalidCastException: injected)", fault.Reason);
            Assert.Equal(new HashSet<long> { 1, 2, 3 }, fault.Held);
            await run.WaitAsync(Bound);
        }
        finally
        {
            harness.Abort();
        }
    }

    [Fact]
    public async Task The_sample_actor_stops_instead_of_spinning_when_decode_closes_its_channel_while_prefill_is_open()
    {
        using var harness = new Harness();
        var run = harness.Start(new StageHook());
        try
        {
            harness.Steps.Writer.Complete(); // decode has stopped; prefill has not
            await run.WaitAsync(Bound);
            var fault = await harness.Boundary.Faulted.WaitAsync(Bound);
            Assert.Equal("the decode actor stopped while prefill was still running", fault.Error.Message);
        }
        finally
        {
            harness.Abort();
            harness.Prefilled.Writer.TryComplete();
        }
    }

    [Fact]
    public async Task The_sample_actor_stops_instead_of_spinning_when_a_sequence_waits_to_join_a_closed_decode_channel()
    {
        using var harness = new Harness();
        var run = harness.Start(new StageHook());
        try
        {
            harness.Joins.Writer.Complete(); // the decode side is gone
            var logits = new float[Vocabulary];
            logits[5] = 10; // greedy: token 5, neither an end nor BOS, so the sequence goes on to join
            await harness.Prefilled.Writer.WriteAsync(new PrefillDone(Greedy(1), logits));
            await run.WaitAsync(Bound);
            var fault = await harness.Boundary.Faulted.WaitAsync(Bound);
            Assert.Equal("the decode actor stopped while a sequence waited to join it", fault.Error.Message);
            Assert.Equal(new HashSet<long> { 1 }, fault.Held);
            Assert.True(harness.Detokenize.Reader.TryRead(out var emitted) && emitted.TokenId == 5, "the first token was not emitted before the join");
        }
        finally
        {
            harness.Abort();
        }
    }

    private sealed class NullSink : IRequestSink
    {
        public void Tokenized(IReadOnlyList<int> promptIds) { }
        public void Token(TokenEvent token) { }
        public void Finished(GenerationResult result) { }
        public void Failed(Exception exception) { }
    }

    /// <summary>A vocabulary of <see cref="Vocabulary"/> ids, each spelled "a"; 1 is BOS, 2 the end.</summary>
    private sealed class FlatTokenizer : ITokenizer
    {
        public int VocabSize => Vocabulary;
        public int? BosId => 1;
        public IReadOnlyList<int> EndIds { get; } = [2];
        public IReadOnlyList<int> Encode(string text, bool addSpecial) => [.. text.Select(_ => 3)];
        public string Decode(IReadOnlyList<int> ids) => new('a', ids.Count);
        public ReadOnlySpan<byte> TokenBytes(int previousId, int id) => "a"u8;
        public string PieceOf(int id) => "a";
        public bool IsSpecial(int id) => id < 3;
    }
}
