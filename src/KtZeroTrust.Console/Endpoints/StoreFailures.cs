using System.Data.Common;

namespace KtZeroTrust.SocConsole.Endpoints;

/// <summary>
/// A console read whose database (the registry, the decision store) does not answer is 503 with Retry-After and a
/// sentence, not a 500: the analyst learns the console is fine and the store is away, and tries again.
/// </summary>
internal static partial class StoreFailures
{
    public static RouteGroupBuilder AnswerStoreFailures(this RouteGroupBuilder api)
    {
        api.AddEndpointFilter(async (context, next) =>
        {
            try
            {
                return await next(context);
            }
            catch (DbException ex) when (!context.HttpContext.RequestAborted.IsCancellationRequested)
            {
                var logger = context.HttpContext.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("KtZeroTrust.SocConsole.Store");
                LogStoreFailed(logger, ex, context.HttpContext.Request.Path);
                context.HttpContext.Response.Headers.RetryAfter = "5";
                return Results.Problem(detail: "A database the console reads (the registry or the decision store) did not answer; try again shortly.",
                    statusCode: StatusCodes.Status503ServiceUnavailable, extensions: new Dictionary<string, object?> { ["reason"] = "dependency_unavailable" });
            }
        });
        return api;
    }

    [LoggerMessage(EventId = ConsoleEventIds.StoreUnavailable, Level = LogLevel.Warning, Message = "Console: a database did not answer for {Path}")]
    private static partial void LogStoreFailed(ILogger logger, Exception exception, string path);
}
