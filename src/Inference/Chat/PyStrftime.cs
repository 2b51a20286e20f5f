using System.Globalization;
using System.Text;

namespace Pipeline.Inference.Chat;

/// <summary>Python's <c>datetime.strftime</c> in the C locale, for <c>strftime_now</c> (Llama 3.2 writes today's date with it).</summary>
internal static class PyStrftime
{
    public static string Format(DateTimeOffset time, string format)
    {
        var c = CultureInfo.InvariantCulture;
        var b = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                b.Append(format[i]);
                continue;
            }

            char code = format[++i];
            b.Append(code switch
            {
                'a' => time.ToString("ddd", c),
                'A' => time.ToString("dddd", c),
                'b' or 'h' => time.ToString("MMM", c),
                'B' => time.ToString("MMMM", c),
                'd' => time.Day.ToString("00", c),
                'e' => time.Day.ToString(c).PadLeft(2),
                'm' => time.Month.ToString("00", c),
                'y' => (time.Year % 100).ToString("00", c),
                'Y' => time.Year.ToString(c),
                'H' => time.Hour.ToString("00", c),
                'I' => (time.Hour % 12 == 0 ? 12 : time.Hour % 12).ToString("00", c),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'M' => time.Minute.ToString("00", c),
                'S' => time.Second.ToString("00", c),
                'f' => (time.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", c),
                'j' => time.DayOfYear.ToString("000", c),
                'w' => ((int)time.DayOfWeek).ToString(c),
                'u' => (time.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)time.DayOfWeek).ToString(c),
                'z' => (time.Offset < TimeSpan.Zero ? "-" : "+") + time.Offset.ToString("hhmm", c),
                'F' => time.ToString("yyyy-MM-dd", c),
                'T' => time.ToString("HH:mm:ss", c),
                'D' => time.ToString("MM/dd/yy", c),
                '%' => "%",
                _ => "%" + code,
            });
        }

        return b.ToString();
    }
}
