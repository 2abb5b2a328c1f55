using System.Globalization;
using System.Text;
using KtZeroTrust.Core.Decisions;

namespace KtZeroTrust.SocConsole.Decisions;

/// <summary>
/// Decisions as CSV (RFC 4180: a header row, CRLF, fields quoted when they hold a comma, quote or line break). A field a
/// spreadsheet would run as a formula (starting with = + - @, tab or carriage return) is prefixed with an apostrophe:
/// subjects, paths and details come from the network, and an export must not become a way to run one on the analyst.
/// </summary>
internal static class DecisionCsv
{
    private const string Header = "time,id,kind,listener,subject,source_address,source_port,method,path,route,outcome,reason,certificate_hash,latency_us,node,policy_version,detail";

    public static string Write(IEnumerable<DecisionEvent> decisions)
    {
        var text = new StringBuilder(Header).Append("\r\n");
        foreach (var e in decisions)
        {
            string?[] fields =
            [
                e.Time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture), e.Id, DecisionNames.Name(e.Kind), DecisionNames.Name(e.Listener),
                e.Subject, e.SourceAddress, e.SourcePort == 0 ? "" : e.SourcePort.ToString(CultureInfo.InvariantCulture), e.Method, e.Path, e.Route,
                e.Outcome == DecisionOutcome.Allow ? "allow" : "deny", ReasonCodes.Name(e.Reason), e.CertificateHash,
                e.LatencyMicroseconds.ToString("0.#", CultureInfo.InvariantCulture), e.Node, e.PolicyVersion, e.Detail,
            ];
            for (var i = 0; i < fields.Length; i++)
            {
                if (i > 0)
                {
                    text.Append(',');
                }

                Field(text, fields[i]);
            }

            text.Append("\r\n");
        }

        return text.ToString();
    }

    private static void Field(StringBuilder text, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        if (value[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
        {
            value = "'" + value;
        }

        if (value.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            text.Append(value);
            return;
        }

        text.Append('"').Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
    }
}
