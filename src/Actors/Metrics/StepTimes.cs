namespace Pipeline.Actors;

/// <summary>
/// Where a pipeline's model time went, summed since it started: the decode actor's model calls and
/// its waits for sampling, and the prefill actor's model calls. The bench divides these by their
/// counts to say where a step goes (docs/PERFORMANCE.md); the server exports them as counters.
/// </summary>
/// <param name="DecodeSteps">Decode steps that ran a model call to completion.</param>
/// <param name="DecodeRows">Rows (sequences) those steps fed, summed.</param>
/// <param name="DecodeCalls">Time inside the decode steps' model calls (for a resident pool, every part's call, its uploads and downloads).</param>
/// <param name="Sampling">Time from the end of a step's call to sample's last reply: the draws and stop checks not done while the call ran.</param>
/// <param name="PrefillCalls">Prefill model calls that completed.</param>
/// <param name="PrefillCallTime">Time inside those calls.</param>
/// <param name="EarlyRows">Rows handed to sample while their step's call still ran (a resident pool's parts before the last), summed; <see cref="Sampling"/> counts only what was left after the call.</param>
internal sealed record StepTimes(long DecodeSteps, long DecodeRows, TimeSpan DecodeCalls, TimeSpan Sampling, long PrefillCalls, TimeSpan PrefillCallTime, long EarlyRows);
