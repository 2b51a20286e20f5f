using System.Globalization;

namespace Pipeline.Benchmarks;

/// <summary>
/// The process's memory as the kernel and the GC see it: resident set now (VmRSS) and its
/// high-water mark (VmHWM) from /proc/self/status, and the managed heap. Where /proc is missing
/// (not Linux) the resident figures fall back to the working set and its peak.
/// </summary>
internal readonly record struct ProcessMemory(long ResidentBytes, long PeakResidentBytes, long ManagedHeapBytes, long GcCommittedBytes)
{
    public static ProcessMemory Now()
    {
        long rss = -1, hwm = -1;
        const string status = "/proc/self/status";
        if (File.Exists(status))
            foreach (var line in File.ReadLines(status))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = Kilobytes(line);
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) hwm = Kilobytes(line);
            }
        if (rss < 0 || hwm < 0)
        {
            using var self = System.Diagnostics.Process.GetCurrentProcess();
            rss = self.WorkingSet64;
            hwm = self.PeakWorkingSet64;
        }
        var gc = GC.GetGCMemoryInfo();
        return new ProcessMemory(rss, hwm, GC.GetTotalMemory(forceFullCollection: false), gc.TotalCommittedBytes);
    }

    // "VmRSS:     123456 kB"
    private static long Kilobytes(string line)
    {
        var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture) * 1024;
    }
}
