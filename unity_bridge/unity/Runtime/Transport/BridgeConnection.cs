// The network side of the headset: one background thread owns the NetMQ DealerSocket and the
// HeadsetProtocol; the main thread talks to it only through two ConcurrentQueues.
//
// Known-safe NetMQ-in-Unity pattern:
//   * AsyncIO.ForceDotNet.Force() on the main thread before any socket exists (ExposureBridge.Awake);
//   * every socket created, used and disposed on this one thread;
//   * receive with a timeout (never a blocking Receive) so the thread notices cancellation;
//   * Linger = 0 so that Dispose never waits for unsent frames;
//   * on quit: Stop() cancels, joins the thread with a limit, and the caller runs
//     NetMQConfig.Cleanup(false) under a watchdog (ExposureBridge.OnApplicationQuit).
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;
using ExposureCtrl.Bridge.Protocol;
using NetMQ;
using NetMQ.Sockets;

namespace ExposureCtrl.Bridge.Transport
{
    public sealed class BridgeSettings
    {
        public string Address = "tcp://127.0.0.1:5556";
        public string Client = "unity";
        public List<string> Parameters = new List<string>();
        /// <summary>Optional CURVE: this headset's key pair and the controller's public key (Z85).</summary>
        public string HeadsetPublicKey, HeadsetSecretKey, ControllerPublicKey;
        public int ReceiveTimeoutMs = 10;

        public bool UsesCurve { get { return !string.IsNullOrEmpty(ControllerPublicKey); } }
    }

    public sealed class BridgeConnection : IDisposable
    {
        /// <summary>Commands for the main thread (drain it in Update).</summary>
        public readonly ConcurrentQueue<HeadsetCommand> ToMain = new ConcurrentQueue<HeadsetCommand>();

        readonly ConcurrentQueue<Action<HeadsetProtocol, double>> _toNet = new ConcurrentQueue<Action<HeadsetProtocol, double>>();
        readonly BridgeSettings _settings;
        readonly CancellationTokenSource _cancel = new CancellationTokenSource();
        readonly Stopwatch _clock = Stopwatch.StartNew();
        Thread _thread;
        volatile Exception _failure;

        public BridgeConnection(BridgeSettings settings) { _settings = settings; }

        public Exception Failure { get { return _failure; } }
        public bool Running { get { return _thread != null && _thread.IsAlive; } }

        double Now { get { return _clock.Elapsed.TotalSeconds; } }

        public void Start()
        {
            if (_thread != null) throw new InvalidOperationException("already started");
            _thread = new Thread(Run) { IsBackground = true, Name = "ExposureBridge network" };
            _thread.Start();
        }

        /// <summary>Run an action on the network thread with the protocol (events, acks, bye).</summary>
        public void Post(Action<HeadsetProtocol, double> action) { _toNet.Enqueue(action); }

        public void SceneShown(List<long> seqs) { if (seqs.Count > 0) Post((p, now) => p.SceneShown(seqs, now)); }
        public void SendEvent(string kind, object value) { Post((p, now) => p.SendEvent(kind, value, now)); }
        public void SendBye(string reason) { Post((p, now) => p.SendBye(reason, now)); }

        /// <summary>Cancel and join the network thread; false if it did not stop in time.</summary>
        public bool Stop(int joinTimeoutMs = 500)
        {
            _cancel.Cancel();
            if (_thread == null) return true;
            return _thread.Join(joinTimeoutMs);
        }

        public void Dispose()
        {
            Stop();
            _cancel.Dispose();
        }

        DealerSocket Open()
        {
            var s = new DealerSocket();
            s.Options.Linger = TimeSpan.Zero;
            s.Options.ReconnectInterval = TimeSpan.FromMilliseconds(100);
            if (_settings.UsesCurve)
            {
                s.Options.CurveCertificate = new NetMQCertificate(_settings.HeadsetSecretKey, _settings.HeadsetPublicKey);
                s.Options.CurveServerCertificate = NetMQCertificate.FromPublicKey(_settings.ControllerPublicKey);
            }
            s.Connect(_settings.Address);
            return s;
        }

        void Run()
        {
            DealerSocket socket = null;
            var protocol = new HeadsetProtocol(_settings.Client, _settings.Parameters);
            var timeout = TimeSpan.FromMilliseconds(_settings.ReceiveTimeoutMs);
            try
            {
                socket = Open();
                protocol.Start(Now);
                while (!_cancel.IsCancellationRequested)
                {
                    Flush(socket, protocol);
                    byte[] frame;
                    bool more;
                    if (socket.TryReceiveFrameBytes(timeout, out frame, out more))
                    {
                        if (more)
                        {
                            while (more && socket.TryReceiveFrameBytes(TimeSpan.Zero, out frame, out more)) { }
                            protocol.OnFrame(new byte[] { 0xc1 }, Now);  // multi-frame: counted as malformed
                        }
                        else
                        {
                            protocol.OnFrame(frame, Now);
                        }
                    }
                    Action<HeadsetProtocol, double> action;
                    while (_toNet.TryDequeue(out action)) action(protocol, Now);
                    protocol.Tick(Now);
                    Flush(socket, protocol);
                    foreach (var c in protocol.Commands) ToMain.Enqueue(c);
                    protocol.Commands.Clear();
                    if (protocol.Stopped) break;
                    if (protocol.ReconnectRequested)
                    {
                        socket.Dispose();
                        socket = null;
                        Thread.Sleep(50);
                        socket = Open();
                        protocol.OnReconnected(Now);
                    }
                }
                // Stopping: still run what the main thread posted last (typically a bye), then
                // give the frames a moment to leave, since Dispose with linger 0 drops them.
                Action<HeadsetProtocol, double> last;
                while (_toNet.TryDequeue(out last)) last(protocol, Now);
                if (Flush(socket, protocol) > 0 || protocol.Stopped) Thread.Sleep(50);
            }
            catch (Exception e)
            {
                _failure = e;
                ToMain.Enqueue(new HeadsetCommand { Kind = CommandKind.ShowSafe, State = protocol.SafeState, Reason = "bridge failure: " + e.Message });
            }
            finally
            {
                if (socket != null) socket.Dispose();
            }
        }

        static int Flush(DealerSocket socket, HeadsetProtocol protocol)
        {
            int n = protocol.Outbox.Count;
            foreach (var f in protocol.Outbox)
            {
                // never block the network thread: a frame that cannot be queued now is dropped
                // (heartbeats are resent; scenes are re-sent by the controller; events are rare)
                socket.TrySendFrame(TimeSpan.FromMilliseconds(5), f);
            }
            protocol.Outbox.Clear();
            return n;
        }
    }
}
