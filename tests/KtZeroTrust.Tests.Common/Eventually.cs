namespace KtZeroTrust.Tests.Common;

/// <summary>Waits on a condition with a bounded timeout (never a fixed sleep, never a duration assertion).</summary>
public static class Eventually
{
    /// <summary>
    /// Probes until the condition holds. A probe failing with a transport error (a connection the gateway cut while the
    /// state under test was changing) counts as "not yet", and is reported if the timeout passes.
    /// </summary>
    public static async Task<T> Until<T>(Func<Task<T>> probe, Func<T, bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        T last = default!;
        Exception? lastError = null;
        do
        {
            try
            {
                last = await probe();
                lastError = null;
                if (condition(last))
                {
                    return last;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or IOException)
            {
                lastError = ex;
            }

            await Task.Delay(50);
        }
        while (DateTime.UtcNow < deadline);

        throw new TimeoutException($"Timed out waiting for {what}; last value: {(lastError is null ? last : lastError.Message)}", lastError);
    }

    /// <summary>Waits until an in-process condition holds.</summary>
    public static Task Until(Func<bool> condition, string what, TimeSpan? timeout = null)
        => Until(() => Task.FromResult(condition()), static ok => ok, what, timeout);
}
