using System.Text.Json;
using KtZeroTrust.Core.Decisions;

namespace KtZeroTrust.Monitoring.Ocsf;

/// <summary>
/// The export form of a decision: one OCSF 1.3 event per decision, so SIEMs that speak OCSF ingest it without a
/// custom parser. Requests are HTTP Activity (4002), TLS handshakes, connection aborts, attestations and enrollments
/// Authentication (3002), alerts Detection Finding (2004), lifecycle and admin actions Entity Management (3004), the
/// gateway's own state Application Lifecycle (6002). Everything of ours without an OCSF home is under
/// <c>unmapped</c>. The mapping is documented in docs/decision-events.md; change both together.
/// </summary>
public static class OcsfJson
{
    public const string SchemaVersion = "1.3.0";

    public static void Write(Utf8JsonWriter writer, DecisionEvent e)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(e);
        var (classUid, className, categoryUid, categoryName, activityId, activityName) = Classify(e);
        var failed = e.Outcome == DecisionOutcome.Deny;
        writer.WriteStartObject();
        writer.WriteNumber("class_uid"u8, classUid);
        writer.WriteString("class_name"u8, className);
        writer.WriteNumber("category_uid"u8, categoryUid);
        writer.WriteString("category_name"u8, categoryName);
        writer.WriteNumber("activity_id"u8, activityId);
        writer.WriteString("activity_name"u8, activityName);
        writer.WriteNumber("type_uid"u8, (classUid * 100L) + activityId);
        writer.WriteNumber("time"u8, e.Time.ToUnixTimeMilliseconds());
        var (severityId, severity) = e.Kind == DecisionKind.Alert ? (4, "High") : failed ? (3, "Medium") : (1, "Informational");
        writer.WriteNumber("severity_id"u8, severityId);
        writer.WriteString("severity"u8, severity);
        writer.WriteNumber("status_id"u8, failed ? 2 : 1);
        writer.WriteString("status"u8, failed ? "Failure" : "Success");
        writer.WriteString("status_code"u8, ReasonCodes.Name(e.Reason));
        writer.WriteString("status_detail"u8, e.Detail ?? ReasonCodes.Title(e.Reason));
        if (e.Kind == DecisionKind.Access)
        {
            writer.WriteNumber("action_id"u8, failed ? 2 : 1);
            writer.WriteString("action"u8, failed ? "Denied" : "Allowed");
        }

        writer.WriteNumber("duration"u8, (long)Math.Round(e.LatencyMicroseconds / 1000));

        writer.WriteStartObject("metadata"u8);
        writer.WriteString("version"u8, SchemaVersion);
        writer.WriteString("uid"u8, e.Id);
        writer.WriteString("log_name"u8, DecisionNames.Name(e.Kind));
        writer.WriteStartObject("product"u8);
        writer.WriteString("name"u8, "KtZeroTrust"u8);
        writer.WriteString("vendor_name"u8, "KtZeroTrust"u8);
        writer.WriteEndObject();
        writer.WriteEndObject();

        if (e.SourceAddress is not null)
        {
            writer.WriteStartObject("src_endpoint"u8);
            writer.WriteString("ip"u8, e.SourceAddress);
            if (e.SourcePort != 0)
            {
                writer.WriteNumber("port"u8, e.SourcePort);
            }

            writer.WriteEndObject();
        }

        writer.WriteStartObject("dst_endpoint"u8);
        writer.WriteString("svc_name"u8, DecisionNames.Name(e.Listener));
        if (e.Node is not null)
        {
            writer.WriteString("hostname"u8, e.Node);
        }

        writer.WriteEndObject();
        WriteSubject(writer, e, classUid);

        if (classUid == 4002)
        {
            writer.WriteStartObject("http_request"u8);
            writer.WriteString("http_method"u8, e.Method);
            writer.WriteStartObject("url"u8);
            writer.WriteString("path"u8, e.Path ?? "/");
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        else if (classUid == 2004)
        {
            writer.WriteStartObject("finding_info"u8);
            writer.WriteString("uid"u8, e.Id);
            writer.WriteString("title"u8, ReasonCodes.Title(e.Reason));
            writer.WriteStartArray("types"u8);
            writer.WriteStringValue(ReasonCodes.Name(e.Reason));
            writer.WriteEndArray();
            if (e.Route is not null)
            {
                writer.WriteString("product_uid"u8, e.Route);
            }

            writer.WriteEndObject();
        }

        writer.WriteStartObject("unmapped"u8);
        writer.WriteString("kind"u8, DecisionNames.Name(e.Kind));
        WriteOptional(writer, "route"u8, e.Route);
        WriteOptional(writer, "certificate_sha256"u8, e.CertificateHash);
        WriteOptional(writer, "policy_version"u8, e.PolicyVersion);
        writer.WriteNumber("latency_us"u8, Math.Round(e.LatencyMicroseconds, 1));
        writer.WriteEndObject();
        writer.WriteEndObject();
    }

    public static byte[] ToUtf8(DecisionEvent e)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1024);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            Write(writer, e);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Which OCSF class and activity an event is.</summary>
    public static (int ClassUid, string ClassName, int CategoryUid, string CategoryName, int ActivityId, string ActivityName) Classify(DecisionEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        const int Authentication = 3002;
        return e.Kind switch
        {
            DecisionKind.Alert => (2004, "Detection Finding", 2, "Findings", 1, "Create"),
            DecisionKind.Lifecycle or DecisionKind.Admin => (3004, "Entity Management", 3, "Identity & Access Management", 3, "Update"),
            DecisionKind.System => (6002, "Application Lifecycle", 6, "Application Activity", 99, "Other"),
            DecisionKind.Attestation => (Authentication, "Authentication", 3, "Identity & Access Management", 99, "Attest"),
            DecisionKind.Enrollment => (Authentication, "Authentication", 3, "Identity & Access Management", 99, "Enroll"),
            _ when e.Route == "tls-handshake" => (Authentication, "Authentication", 3, "Identity & Access Management", 1, "Logon"),
            _ when e.Route == "connection-abort" => (Authentication, "Authentication", 3, "Identity & Access Management", 2, "Logoff"),
            _ when e.Method is not null => (4002, "HTTP Activity", 4, "Network Activity", HttpActivity(e.Method), HttpActivityName(e.Method)),
            _ => (Authentication, "Authentication", 3, "Identity & Access Management", 99, "Other"),
        };
    }

    private static int HttpActivity(string method) => method.ToUpperInvariant() switch
    {
        "CONNECT" => 1,
        "DELETE" => 2,
        "GET" => 3,
        "HEAD" => 4,
        "OPTIONS" => 5,
        "POST" => 6,
        "PUT" => 7,
        "TRACE" => 8,
        _ => 99,
    };

    private static string HttpActivityName(string method) => HttpActivity(method) == 99 ? "Other" : method.ToUpperInvariant() switch
    {
        "CONNECT" => "Connect",
        "DELETE" => "Delete",
        "GET" => "Get",
        "HEAD" => "Head",
        "OPTIONS" => "Options",
        "POST" => "Post",
        "PUT" => "Put",
        _ => "Trace",
    };

    /// <summary>Devices are OCSF devices; users (the user and console listeners) are users; both also as the actor.</summary>
    private static void WriteSubject(Utf8JsonWriter writer, DecisionEvent e, int classUid)
    {
        if (e.Subject is null)
        {
            return;
        }

        var isUser = e.Listener is DecisionListener.User or DecisionListener.Console;
        if (isUser)
        {
            writer.WriteStartObject("user"u8);
            writer.WriteString("uid"u8, e.Subject);
            writer.WriteString("name"u8, e.Subject);
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteStartObject("device"u8);
            writer.WriteString("uid"u8, e.Subject);
            writer.WriteString("name"u8, e.Subject);
            writer.WriteNumber("type_id"u8, 99);
            writer.WriteString("type"u8, "Femtocell"u8);
            writer.WriteEndObject();
            if (classUid == 3002)
            {
                // Authentication requires a user: for a unit it is the unit's own identity.
                writer.WriteStartObject("user"u8);
                writer.WriteString("uid"u8, e.Subject);
                writer.WriteNumber("type_id"u8, 99);
                writer.WriteString("type"u8, "Device"u8);
                writer.WriteEndObject();
            }
        }

        if (classUid == 3004)
        {
            writer.WriteStartObject("entity"u8);
            writer.WriteString("uid"u8, e.Subject);
            writer.WriteString("type"u8, isUser ? "User"u8 : "Device"u8);
            writer.WriteEndObject();
        }
    }

    private static void WriteOptional(Utf8JsonWriter writer, ReadOnlySpan<byte> name, string? value)
    {
        if (value is not null)
        {
            writer.WriteString(name, value);
        }
    }
}
