using System.Globalization;
using System.Security;
using System.Text;
using Sealpoint.Bench.Measuring;

namespace Sealpoint.Bench.Reporting;

public sealed record BarRow(string Label, IReadOnlyList<Summary?> Values, bool Emphasis = false, string? Color = null);
public sealed record BarGroup(string Title, IReadOnlyList<BarRow> Rows);

/// <summary>
/// A horizontal bar chart as SVG, written by hand so the report needs no plotting package. The time axis is
/// logarithmic because the contenders span four decades (tens of milliseconds to minutes); each bar is a median,
/// its whisker the min–max of the repetitions, and the median is printed at the bar's end so no one has to read
/// the axis.
/// </summary>
public static class SvgChart
{
    private static readonly string[] Colors = ["#3b6fb6", "#e08a2e", "#4a9b5a", "#b04a5a"];
    private const int Width = 1100, LabelWidth = 300, RightMargin = 110, BarHeight = 13, BarGap = 3, RowGap = 8, GroupHeader = 26;

    public static string Render(string title, string subtitle, IReadOnlyList<string> series, IReadOnlyList<BarGroup> groups)
    {
        var all = groups.SelectMany(g => g.Rows).SelectMany(r => r.Values).Where(v => v is not null).Select(v => v!).ToList();
        double lo = all.Count == 0 ? 0.001 : Math.Max(1e-4, all.Min(v => Math.Min(v.Min, v.Median)));
        double hi = all.Count == 0 ? 1 : all.Max(v => Math.Max(v.Max, v.Median));
        int minDecade = (int)Math.Floor(Math.Log10(lo));
        int maxDecade = (int)Math.Ceiling(Math.Log10(hi));
        if (maxDecade <= minDecade) maxDecade = minDecade + 1;
        double plotLeft = LabelWidth, plotWidth = Width - LabelWidth - RightMargin;
        double X(double seconds) => plotLeft + (Math.Log10(Math.Max(seconds, Math.Pow(10, minDecade))) - minDecade) / (maxDecade - minDecade) * plotWidth;

        int rowHeight = series.Count * (BarHeight + BarGap) + RowGap;
        int top = 70 + 20;
        int height = top + groups.Sum(g => GroupHeader + g.Rows.Count * rowHeight) + 50;
        var svg = new StringBuilder();
        svg.Append($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{height}\" viewBox=\"0 0 {Width} {height}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n");
        svg.Append($"<rect width=\"{Width}\" height=\"{height}\" fill=\"white\"/>\n");
        svg.Append($"<text x=\"20\" y=\"28\" font-size=\"18\" font-weight=\"bold\">{E(title)}</text>\n");
        svg.Append($"<text x=\"20\" y=\"48\" fill=\"#555\">{E(subtitle)}</text>\n");
        // Legend.
        double lx = plotLeft;
        for (int i = 0; i < series.Count; i++)
        {
            svg.Append($"<rect x=\"{F(lx)}\" y=\"60\" width=\"14\" height=\"12\" fill=\"{Colors[i % Colors.Length]}\"/>");
            svg.Append($"<text x=\"{F(lx + 20)}\" y=\"70\">{E(series[i])}</text>\n");
            lx += 30 + series[i].Length * 7;
        }
        svg.Append($"<text x=\"{F(lx + 10)}\" y=\"70\" fill=\"#555\">bar = median, whisker = min–max, log scale</text>\n");
        // Grid: 1-2-5 per decade.
        int gridBottom = height - 40;
        for (int d = minDecade; d <= maxDecade; d++)
            foreach (int m in new[] { 1, 2, 5 })
            {
                double v = m * Math.Pow(10, d);
                if (d == maxDecade && m > 1) break;
                double x = X(v);
                bool major = m == 1;
                svg.Append($"<line x1=\"{F(x)}\" y1=\"{top - 6}\" x2=\"{F(x)}\" y2=\"{gridBottom}\" stroke=\"{(major ? "#bbb" : "#e4e4e4")}\" stroke-width=\"1\"/>\n");
                svg.Append($"<text x=\"{F(x)}\" y=\"{gridBottom + 16}\" text-anchor=\"middle\" fill=\"{(major ? "#333" : "#888")}\" font-size=\"{(major ? 12 : 10)}\">{E(Format.Seconds(v))}</text>\n");
            }
        double y = top;
        foreach (var group in groups)
        {
            svg.Append($"<text x=\"20\" y=\"{F(y + 17)}\" font-weight=\"bold\" font-size=\"13\">{E(group.Title)}</text>\n");
            svg.Append($"<line x1=\"20\" y1=\"{F(y + 22)}\" x2=\"{Width - 20}\" y2=\"{F(y + 22)}\" stroke=\"#888\"/>\n");
            y += GroupHeader;
            foreach (var row in group.Rows)
            {
                double mid = y + series.Count * (BarHeight + BarGap) / 2.0;
                svg.Append($"<text x=\"{LabelWidth - 10}\" y=\"{F(mid + 4)}\" text-anchor=\"end\"{(row.Emphasis ? " font-weight=\"bold\"" : "")}>{E(row.Label)}</text>\n");
                for (int i = 0; i < series.Count; i++)
                {
                    double by = y + i * (BarHeight + BarGap);
                    var v = i < row.Values.Count ? row.Values[i] : null;
                    if (v is null)
                    {
                        svg.Append($"<text x=\"{F(plotLeft + 4)}\" y=\"{F(by + BarHeight - 2)}\" fill=\"#999\" font-size=\"10\">{E(series[i])}: no data</text>\n");
                        continue;
                    }
                    double x = X(v.Median);
                    svg.Append($"<rect x=\"{F(plotLeft)}\" y=\"{F(by)}\" width=\"{F(Math.Max(1, x - plotLeft))}\" height=\"{BarHeight}\" fill=\"{row.Color ?? Colors[i % Colors.Length]}\"/>\n");
                    if (v.Count > 1)
                    {
                        double wy = by + BarHeight / 2.0;
                        svg.Append($"<line x1=\"{F(X(v.Min))}\" y1=\"{F(wy)}\" x2=\"{F(X(v.Max))}\" y2=\"{F(wy)}\" stroke=\"#222\" stroke-width=\"1.2\"/>");
                        svg.Append($"<line x1=\"{F(X(v.Min))}\" y1=\"{F(by + 3)}\" x2=\"{F(X(v.Min))}\" y2=\"{F(by + BarHeight - 3)}\" stroke=\"#222\"/>");
                        svg.Append($"<line x1=\"{F(X(v.Max))}\" y1=\"{F(by + 3)}\" x2=\"{F(X(v.Max))}\" y2=\"{F(by + BarHeight - 3)}\" stroke=\"#222\"/>\n");
                    }
                    double tx = Math.Max(x, X(v.Max)) + 5;
                    svg.Append($"<text x=\"{F(tx)}\" y=\"{F(by + BarHeight - 2)}\" font-size=\"11\">{E(Format.Seconds(v.Median))}{(v.Count == 1 ? " (n=1)" : "")}</text>\n");
                }
                y += rowHeight;
            }
        }
        svg.Append($"<text x=\"{F(plotLeft + plotWidth / 2)}\" y=\"{gridBottom + 34}\" text-anchor=\"middle\" fill=\"#333\">time (log scale; shorter is better)</text>\n");
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static string F(double v) => v.ToString("0.#", CultureInfo.InvariantCulture);
    private static string E(string s) => SecurityElement.Escape(s) ?? "";
}
