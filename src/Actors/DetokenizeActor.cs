using System.Diagnostics;
using System.Text;
using System.Threading.Channels;
using Pipeline.Inference.Tokenization;

namespace Pipeline.Actors;

/// <summary>
/// Turns each sequence's tokens into text deltas for its caller: only whole UTF-8 characters, and
/// never text that may yet turn out to be the start of a stop string. Owns one byte buffer per
/// live sequence.
/// </summary>
internal sealed class DetokenizeActor(ChannelReader<Emission> inbox, Tokenizer tokenizer)
{
    private sealed class Text(IReadOnlyList<string> stops)
    {
        public readonly List<byte> Bytes = [];
        public readonly byte[][] Stops = stops.Where(s => s.Length > 0).Select(Encoding.UTF8.GetBytes).ToArray();
        public int Emitted;
    }

    private readonly Dictionary<long, Text> _texts = [];

    public async Task RunAsync()
    {
        await foreach (var e in inbox.ReadAllAsync())
        {
            if (e.Error is { } error)
            {
                _texts.Remove(e.Id);
                e.Sink.Failed(error);
                continue;
            }
            if (!_texts.TryGetValue(e.Id, out var text))
                _texts[e.Id] = text = new Text(e.Spec.Stop);
            if (e.TokenId >= 0) text.Bytes.AddRange(tokenizer.TokenBytes(e.PreviousId, e.TokenId));
            var all = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(text.Bytes);
            int boundary;
            if (e.Final is { } final)
            {
                boundary = (int)Math.Max(text.Emitted, Math.Min(final.StopAt ?? all.Length, all.Length));
            }
            else
            {
                var pending = all[text.Emitted..];
                int held = StopMatcher.LongestPartialMatch(pending, text.Stops);
                boundary = text.Emitted + Utf8Boundary.CompletePrefix(pending[..^held]);
            }
            var delta = Encoding.UTF8.GetString(all[text.Emitted..boundary]);
            text.Emitted = boundary;
            if (e.TokenId >= 0) e.Sink.Token(new TokenOutput(e.TokenId, delta, e.Logprob));
            else if (delta.Length > 0) e.Sink.Token(new TokenOutput(-1, delta, null));

            if (e.Final is { } done)
            {
                _texts.Remove(e.Id);
                long now = Stopwatch.GetTimestamp();
                e.Sink.Finished(new SequenceOutcome(
                    done.PromptIds,
                    done.Completion.ToArray(),
                    Encoding.UTF8.GetString(all[..boundary]),
                    e.Reason,
                    done.Spec.Seed,
                    Sequence.Since(done.SubmittedAt, done.PrefillStartedAt == 0 ? now : done.PrefillStartedAt),
                    done.FirstTokenAt == 0 ? null : Sequence.Since(done.SubmittedAt, done.FirstTokenAt),
                    Sequence.Since(done.SubmittedAt, now),
                    done.Logits));
            }
        }
    }
}
