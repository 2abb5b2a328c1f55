using System.Text.Json;
using KtZeroTrust.Hosting.Decisions;
using KtZeroTrust.Core.Decisions;
using Microsoft.AspNetCore.Http;

namespace KtZeroTrust.Hosting.Problems;

/// <summary>RFC 9457 problem details for denials, carrying the stable reason code and the decision id.</summary>
public static class ProblemResponses
{
    public const string ContentType = "application/problem+json";
    public const string TypePrefix = "urn:ktzerotrust:problem:";

    public static async Task WriteDenialAsync(HttpContext context, int status, ReasonCode reason, string decisionId, string? detail = null, IReadOnlyList<ReasonCode>? reasons = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        KtZeroTrust.Hosting.Decisions.RecordedDecision.Mark(context, decisionId);
        context.Response.StatusCode = status;
        context.Response.ContentType = ContentType;
        context.Response.Headers.CacheControl = "no-store";
        var name = ReasonCodes.Name(reason);
        await using var writer = new Utf8JsonWriter(context.Response.BodyWriter);
        writer.WriteStartObject();
        writer.WriteString("type"u8, TypePrefix + name);
        writer.WriteString("title"u8, ReasonCodes.Title(reason));
        writer.WriteNumber("status"u8, status);
        writer.WriteString("reasonCode"u8, name);
        writer.WriteString("decisionId"u8, decisionId);
        if (detail is not null)
        {
            writer.WriteString("detail"u8, detail);
        }

        if (reasons is { Count: > 0 })
        {
            writer.WriteStartArray("reasons"u8);
            foreach (var r in reasons)
            {
                writer.WriteStringValue(ReasonCodes.Name(r));
            }

            writer.WriteEndArray();
        }

        writer.WriteEndObject();
        await writer.FlushAsync(context.RequestAborted);
    }

    /// <summary>The reason for a refusal that only left a status behind.</summary>
    public static ReasonCode ReasonFor(int status) => status switch
    {
        StatusCodes.Status400BadRequest or StatusCodes.Status414UriTooLong or StatusCodes.Status431RequestHeaderFieldsTooLarge => ReasonCode.RequestMalformed,
        StatusCodes.Status401Unauthorized => ReasonCode.AuthenticationRequired,
        StatusCodes.Status404NotFound => ReasonCode.RouteNotFound,
        StatusCodes.Status405MethodNotAllowed => ReasonCode.MethodNotAllowed,
        StatusCodes.Status408RequestTimeout => ReasonCode.RequestTimeout,
        StatusCodes.Status411LengthRequired or StatusCodes.Status413PayloadTooLarge => ReasonCode.PayloadTooLarge,
        StatusCodes.Status415UnsupportedMediaType => ReasonCode.UnsupportedMediaType,
        StatusCodes.Status429TooManyRequests => ReasonCode.RateLimited,
        >= 500 => ReasonCode.InternalError,
        _ => ReasonCode.RequestRefused,
    };
}
