using System.Reflection;
using KtZeroTrust.Core.Decisions;
using KtZeroTrust.Core.Devices;
using KtZeroTrust.Hosting.Devices;
using KtZeroTrust.Monitoring.Detectors;
using KtZeroTrust.Registry.Sqlite;
using KtZeroTrust.Tests.Common;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace KtZeroTrust.Monitoring.Tests;

/// <summary>The one quarantine the request-time clone check and the fleet detectors both suspend through.</summary>
public sealed class DeviceQuarantineTests : IDisposable
{
    private readonly TempDirectory _temp = new("quarantine");
    private readonly PostedDecisions _posted = new();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public void Dispose() => _temp.Dispose();

    [Fact]
    public async Task Suspends_WithTheDetectorAsActorAndTheReasonCodeFirst_ThenRecordsTheLifecycleOnce()
    {
        var registry = new SqliteDeviceRegistry(_temp.Combine("registry.db"), TimeProvider.System);
        await registry.ImportAsync([new ManifestDevice { Serial = "FC-1", Model = "M1" }], "test", Ct);
        await registry.TransitionAsync("FC-1", DeviceLifecycleState.Active, "test", "enrolled", Ct);
        var quarantine = Quarantine(registry);

        Assert.Equal(QuarantineOutcome.Suspended, await quarantine.SuspendAsync(DecisionListener.Device, "clone", ReasonCode.CloneSuspected, "FC-1", "from 10.0.0.1 and 10.0.0.2", Ct));
        Assert.Equal(QuarantineOutcome.AlreadyOut, await quarantine.SuspendAsync(DecisionListener.Detector, "clone", ReasonCode.CloneSuspected, "FC-1", "again", Ct));

        Assert.Equal(DeviceLifecycleState.Suspended, (await registry.FindAsync("FC-1", Ct))!.State);
        var transition = (await registry.GetHistoryAsync("FC-1", Ct))[^1];
        Assert.Equal(("detector:clone", "clone_suspected: from 10.0.0.1 and 10.0.0.2"), (transition.Actor, transition.Reason));
        var lifecycle = Assert.Single(_posted.Events, e => e.Kind == DecisionKind.Lifecycle);
        Assert.Equal(("FC-1", DecisionListener.Device, "detector:clone"), (lifecycle.Subject, lifecycle.Listener, lifecycle.Route));
    }

    [Fact]
    public async Task ARegistryThatFails_OrDoesNotAnswerBeforeTheNodeStops_IsAFailure_NeverAnException()
    {
        Assert.Equal(QuarantineOutcome.Failed, await Quarantine(FakeRegistry.Throwing(new IOException("disk full"))).SuspendAsync(DecisionListener.Detector, "idle", ReasonCode.DeviceIdle, "FC-1", "unseen", Ct));

        using var stopping = new StoppingLifetime();
        var pending = Quarantine(FakeRegistry.Hanging(), stopping).SuspendAsync(DecisionListener.Detector, "idle", ReasonCode.DeviceIdle, "FC-1", "unseen", Ct);
        Assert.False(pending.IsCompleted);
        await stopping.StopAsync();
        Assert.Equal(QuarantineOutcome.Failed, await pending);
        Assert.Empty(_posted.Events);
    }

    [Fact]
    public async Task TheCallersCancellation_IsTheCallers_AndANodeWithoutRegistrySaysSo()
    {
        using var cancel = new CancellationTokenSource();
        var pending = Quarantine(FakeRegistry.Hanging()).SuspendAsync(DecisionListener.Detector, "idle", ReasonCode.DeviceIdle, "FC-1", "unseen", cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);

        Assert.Equal(QuarantineOutcome.NoRegistry, await Quarantine(null).SuspendAsync(DecisionListener.Device, "clone", ReasonCode.CloneSuspected, "FC-1", "x", Ct));
    }

    private DeviceQuarantine Quarantine(IDeviceRegistry? registry, IHostApplicationLifetime? lifetime = null)
        => new(_posted, new DecisionFactory("test-node", TimeProvider.System), NullLogger<DeviceQuarantine>.Instance, registry, lifetime);

    private sealed class StoppingLifetime : IHostApplicationLifetime, IDisposable
    {
        private readonly CancellationTokenSource _stopping = new();

        public CancellationToken ApplicationStarted => CancellationToken.None;

        public CancellationToken ApplicationStopping => _stopping.Token;

        public CancellationToken ApplicationStopped => CancellationToken.None;

        public Task StopAsync() => _stopping.CancelAsync();

        public void StopApplication() => _stopping.Cancel();

        public void Dispose() => _stopping.Dispose();
    }

    /// <summary>A registry whose transition throws, or waits until it is cancelled (a database that does not answer).</summary>
    public class FakeRegistry : DispatchProxy
    {
        private Exception? _failure;

        public static IDeviceRegistry Throwing(Exception failure) => Create(registry => registry._failure = failure);

        public static IDeviceRegistry Hanging() => Create(_ => { });

        private static IDeviceRegistry Create(Action<FakeRegistry> setUp)
        {
            var registry = DispatchProxy.Create<IDeviceRegistry, FakeRegistry>();
            setUp((FakeRegistry)(object)registry);
            return registry;
        }

        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
        {
            if (targetMethod?.Name != nameof(IDeviceRegistry.TransitionAsync))
            {
                throw new NotSupportedException(targetMethod?.Name);
            }

            if (_failure is not null)
            {
                return Task.FromException<DeviceRecord>(_failure);
            }

            var token = (CancellationToken)args![^1]!;
            var never = new TaskCompletionSource<DeviceRecord>(TaskCreationOptions.RunContinuationsAsynchronously);
            token.Register(() => never.TrySetCanceled(token));
            return never.Task;
        }
    }
}

/// <summary>The detectors' settings are validated on start; each problem names its key.</summary>
public sealed class DetectorOptionsTests
{
    [Fact]
    public void Defaults_AreUsable_AndEachBadSetting_IsNamed()
    {
        Assert.Empty(new DetectorOptions().Problems());

        var bad = new DetectorOptions { DenialBurst = { Threshold = 0 }, LocationDrift = { MaxMeters = double.NaN }, Clone = { Window = TimeSpan.Zero } };

        var problems = bad.Problems().ToList();
        Assert.Equal(3, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("ZeroTrust:Detectors:DenialBurst", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("ZeroTrust:Detectors:LocationDrift:MaxMeters", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("ZeroTrust:Detectors:Clone", StringComparison.Ordinal));
    }
}
