namespace Pipeline.Actors;

/// <summary>
/// Where a pipeline's model time went, summed since it started: the decode actor's model calls and
/// its waits for sampling, and the prefill actor's model calls. The bench divides these by their
/// counts to say where a step goes (docs/PERFORMANCE.md); the server exports them as counters.
/// </summary>
/// <param name="DecodeSteps">Decode calls that ran to completion (one a lane each step).</param>
/// <param name="DecodeRows">Rows (sequences) those calls fed, summed.</param>
/// <param name="DecodeCalls">Time inside the decode steps' model calls (for a resident pool, every part's call, its uploads and downloads).</param>
/// <param name="Sampling">Time between one decode call's end and the next one's start while sequences ran: the device waiting on sample (draws and stop checks no other lane's call hid) and on the decode actor.</param>
/// <param name="PrefillCalls">Prefill model calls that completed.</param>
/// <param name="PrefillCallTime">Time inside those calls.</param>
/// <param name="EarlyRows">Rows drawn while another lane's call ran, summed: sampling hidden behind the device's work.</param>
internal sealed record StepTimes(long DecodeSteps, long DecodeRows, TimeSpan DecodeCalls, TimeSpan Sampling, long PrefillCalls, TimeSpan PrefillCallTime, long EarlyRows);
