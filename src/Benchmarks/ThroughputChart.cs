using System.Globalization;
using ScottPlot;

namespace Pipeline.Benchmarks;

/// <summary>
/// A PNG of three panels against concurrency (log 2 axis): generated tokens/s, time-to-first-token
/// p99 and inter-token latency p99, one line per mode.
/// </summary>
internal static class ThroughputChart
{
    public static void Write(BenchReport report, string path, int width = 1500, int height = 500)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir) Directory.CreateDirectory(dir);
        var panels = new (string Title, string Unit, Func<ModeResult, double> Value)[]
        {
            ("Throughput", "generated tokens/s", r => r.TokensPerSecond),
            ("Time to first token, p99", "ms", r => r.TtftP99Ms),
            ("Inter-token latency, p99", "ms", r => r.ItlP99Ms),
        };
        var levels = report.Results.Select(r => r.Concurrency).Distinct().Order().ToArray();
        var multiplot = new Multiplot();
        multiplot.AddPlots(panels.Length);
        for (int p = 0; p < panels.Length; p++)
        {
            var plot = multiplot.GetPlot(p);
            foreach (var group in report.Results.GroupBy(r => r.Mode))
            {
                var rows = group.OrderBy(r => r.Concurrency).ToArray();
                var line = plot.Add.Scatter(rows.Select(r => Math.Log2(r.Concurrency)).ToArray(), rows.Select(panels[p].Value).ToArray());
                line.LegendText = group.Key;
                line.MarkerSize = 7;
                line.LineWidth = 2;
            }
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                levels.Select(c => Math.Log2(c)).ToArray(), levels.Select(c => c.ToString(CultureInfo.InvariantCulture)).ToArray());
            plot.Title(panels[p].Title);
            plot.XLabel("concurrent requests");
            plot.YLabel(panels[p].Unit);
            // From zero, so the eye reads ratios between modes rather than differences.
            double top = report.Results.Select(panels[p].Value).DefaultIfEmpty(1).Max();
            plot.Axes.SetLimitsY(0, top > 0 ? top * 1.1 : 1);
            plot.ShowLegend(Alignment.UpperLeft);
        }
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        multiplot.SavePng(path, width, height);
    }
}
