using Microsoft.AspNetCore.Http;

namespace KtZeroTrust.Hosting.Decisions;

/// <summary>
/// Marks a request whose decision has been posted, so that the refusal recorder (<c>RefusalRecorderMiddleware</c>) does not record a
/// second one. Every place that posts a decision for a request marks it.
/// </summary>
public interface IRecordedDecisionFeature
{
    string DecisionId { get; }
}

public sealed class RecordedDecisionFeature(string decisionId) : IRecordedDecisionFeature
{
    public string DecisionId { get; } = decisionId;
}

public static class RecordedDecision
{
    /// <summary>The mark of a refusal counted into a rate-limited summary instead of recorded on its own.</summary>
    public const string InSummary = "in-summary";

    public static void Mark(HttpContext context, string decisionId)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.Features.Get<IRecordedDecisionFeature>() is null)
        {
            context.Features.Set<IRecordedDecisionFeature>(new RecordedDecisionFeature(decisionId));
        }
    }

    /// <summary>Marks with a feature the caller sets anyway (no second allocation on the hot path).</summary>
    public static void Mark(HttpContext context, IRecordedDecisionFeature feature)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Features.Set(feature);
    }

    public static bool IsRecorded(HttpContext context) => context.Features.Get<IRecordedDecisionFeature>() is not null;
}
