// The headset's side of PROTOCOL.md v1 as a plain state machine: no sockets, no threads, no
// UnityEngine. The transport feeds it frames and the time; it fills Outbox (frames to send) and
// Commands (what the scene must do) and raises ReconnectRequested when the connection must be
// replaced by a new one. It mirrors the Python reference headset (unity_bridge/emulator.py):
//
//   Start            -> hello (rule 1)
//   welcome          -> ShowState(state, 0) at once; adopt heartbeat_s / timeout_s; Active
//   scene            -> ShowState(state, transition_s, seq); the scene reports back with
//                       SceneShown(seqs) when the transition is done, which sends the acks (rule 7)
//   safe             -> ShowSafe(reason)
//   end              -> ShowSafe + Ended(reason); stops (replaced, or session over)
//   error hello_first-> hello again (a restarted controller, rule 6)
//   error version / unsupported_parameters -> Refused; stops
//   Tick             -> heartbeat when nothing was sent for heartbeat_s (rule 4); after timeout_s
//                       of silence: ShowSafe("controller lost"), Lost, ReconnectRequested (rule 6);
//                       no welcome within timeout_s of a hello: ReconnectRequested
using System;
using System.Collections.Generic;

namespace ExposureCtrl.Bridge.Protocol
{
    public enum HeadsetStatus { Connecting, Active, Lost, Ended, Refused }

    public enum CommandKind { ShowState, ShowSafe, Ended, Refused, Status }

    /// <summary>An instruction for the scene (main thread).</summary>
    public sealed class HeadsetCommand
    {
        public CommandKind Kind;
        public SceneState State;       // ShowState: the scene; ShowSafe: the safe state (may be null before any welcome)
        public double TransitionS;     // ShowState
        public long Seq;               // ShowState from a scene: the seq to ack; 0 for a welcome
        public string Reason;          // ShowSafe / Ended / Refused
        public HeadsetStatus Status;   // Status

        public override string ToString()
        {
            return Kind + (State != null ? " " + State : "") + (Seq != 0 ? " seq " + Seq : "") + (Reason != null ? " (" + Reason + ")" : "");
        }
    }

    public sealed class HeadsetProtocol
    {
        public readonly string Client;
        public readonly List<string> Parameters;
        public readonly List<byte[]> Outbox = new List<byte[]>();
        public readonly List<HeadsetCommand> Commands = new List<HeadsetCommand>();

        public HeadsetStatus Status { get; private set; }
        public bool ReconnectRequested { get; private set; }
        public double HeartbeatS { get; private set; }
        public double TimeoutS { get; private set; }
        public string Session { get; private set; }
        public string Scenario { get; private set; }
        public SceneState SafeState { get; private set; }
        public string EndReason { get; private set; }
        public ErrorMessage LastError { get; private set; }

        public int Malformed { get; private set; }
        public int UnknownTypes { get; private set; }
        public int HeartbeatsSent { get; private set; }
        public int AcksSent { get; private set; }
        public int Fallbacks { get; private set; }

        long _seq;
        double _lastSent;
        double _lastHeard;
        double _helloAt;

        public HeadsetProtocol(string client, IList<string> parameters, double heartbeatS = 1.0, double timeoutS = 3.0)
        {
            if (!(heartbeatS > 0 && timeoutS > heartbeatS))
                throw new ArgumentException("need 0 < heartbeatS < timeoutS");
            Client = client;
            Parameters = new List<string>(parameters);
            HeartbeatS = heartbeatS;
            TimeoutS = timeoutS;
            Status = HeadsetStatus.Connecting;
        }

        public bool Stopped { get { return Status == HeadsetStatus.Ended || Status == HeadsetStatus.Refused; } }

        public void Start(double now) { SendHello(now); }

        /// <summary>The transport opened a new connection: seq restarts, hello again.</summary>
        public void OnReconnected(double now)
        {
            ReconnectRequested = false;
            _seq = 0;
            SendHello(now);
        }

        void Send(Message m, double now)
        {
            m.Seq = ++_seq;
            m.T = now;
            Outbox.Add(Codec.Pack(m));
            _lastSent = now;
        }

        void SendHello(double now)
        {
            Send(new Hello { Client = Client, Parameters = new List<string>(Parameters) }, now);
            _helloAt = now;
            if (Status == HeadsetStatus.Active) SetStatus(HeadsetStatus.Connecting);
        }

        void SetStatus(HeadsetStatus s)
        {
            if (Status == s) return;
            Status = s;
            Commands.Add(new HeadsetCommand { Kind = CommandKind.Status, Status = s });
        }

        void ShowSafe(string reason)
        {
            Commands.Add(new HeadsetCommand { Kind = CommandKind.ShowSafe, State = SafeState == null ? null : SafeState.Copy(), Reason = reason });
        }

        public void OnFrame(byte[] frame, double now)
        {
            if (Stopped) return;
            _lastHeard = now;
            Message msg;
            try
            {
                msg = Codec.Unpack(frame);
            }
            catch (ProtocolException e)
            {
                if (e.Code == "unknown_type") UnknownTypes++; else Malformed++;
                return;
            }
            var welcome = msg as Welcome;
            if (welcome != null)
            {
                Session = welcome.Session;
                Scenario = welcome.Scenario;
                SafeState = welcome.SafeState.Copy();
                HeartbeatS = welcome.HeartbeatS;
                TimeoutS = welcome.TimeoutS;
                Commands.Add(new HeadsetCommand { Kind = CommandKind.ShowState, State = welcome.State.Copy(), TransitionS = 0, Seq = 0 });
                SetStatus(HeadsetStatus.Active);
                return;
            }
            var scene = msg as SceneMessage;
            if (scene != null)
            {
                if (Status == HeadsetStatus.Active)
                    Commands.Add(new HeadsetCommand { Kind = CommandKind.ShowState, State = scene.State.Copy(), TransitionS = scene.TransitionS, Seq = scene.Seq });
                return;
            }
            var safe = msg as SafeMessage;
            if (safe != null) { ShowSafe(safe.Reason); return; }
            if (msg is Heartbeat) return;
            var error = msg as ErrorMessage;
            if (error != null)
            {
                LastError = error;
                if (error.Code == "hello_first") SendHello(now);
                else if (error.Code == "version" || error.Code == "unsupported_parameters")
                {
                    SetStatus(HeadsetStatus.Refused);
                    Commands.Add(new HeadsetCommand { Kind = CommandKind.Refused, Reason = error.Code + ": " + error.Text });
                }
                return;
            }
            var end = msg as EndMessage;
            if (end != null)
            {
                EndReason = end.Reason;
                ShowSafe(end.Reason);
                SetStatus(HeadsetStatus.Ended);
                Commands.Add(new HeadsetCommand { Kind = CommandKind.Ended, Reason = end.Reason });
                return;
            }
            Malformed++;  // a headset-to-controller type coming the wrong way
        }

        public void Tick(double now)
        {
            if (Stopped || ReconnectRequested) return;
            if (Status == HeadsetStatus.Active)
            {
                if (now - _lastHeard >= TimeoutS)
                {
                    Fallbacks++;
                    ShowSafe("controller lost");
                    SetStatus(HeadsetStatus.Lost);
                    ReconnectRequested = true;
                    return;
                }
                if (now - _lastSent >= HeartbeatS)
                {
                    Send(new Heartbeat(), now);
                    HeartbeatsSent++;
                }
            }
            else if (now - _helloAt >= TimeoutS)
            {
                ReconnectRequested = true;  // no welcome: try a fresh connection
            }
        }

        /// <summary>The scene finished showing these scenes: ack them.</summary>
        public void SceneShown(IEnumerable<long> seqs, double now)
        {
            if (Status != HeadsetStatus.Active) return;
            foreach (var s in seqs)
            {
                Send(new Ack { AckSeq = s }, now);
                AcksSent++;
            }
        }

        /// <summary>Send an event (panic, suds 0..100, removed, worn, gaze bool); false if not active.</summary>
        public bool SendEvent(string kind, object value, double now)
        {
            if (kind == "suds")
            {
                if (!(value is long || value is int)) throw new ArgumentException("suds needs an int 0..100");
                long n = Convert.ToInt64(value);
                if (n < 0 || n > 100) throw new ArgumentException("suds needs an int 0..100, got " + n);
                value = n;
            }
            else if (kind == "gaze" && !(value is bool)) throw new ArgumentException("gaze needs a bool");
            if (Status != HeadsetStatus.Active) return false;
            Send(new EventMessage { Kind = kind, Value = value }, now);
            return true;
        }

        public void SendBye(string reason, double now)
        {
            if (Status == HeadsetStatus.Active) Send(new ByeMessage { Reason = reason }, now);
            SetStatus(HeadsetStatus.Ended);
            EndReason = "bye: " + reason;
        }
    }

    /// <summary>Drives transitions on the main thread: which state is shown, the one being
    /// faded to, the progress, and which scene seqs are done (to ack). Mirrors the reference
    /// headset: a scene equal to the running transition's target joins it; one equal to what is
    /// shown completes at once; any other replaces the running transition (never acked).</summary>
    public sealed class SceneDriver
    {
        public SceneState Shown { get; private set; }
        public SceneState From { get; private set; }
        public SceneState Target { get; private set; }
        double _start, _duration;
        readonly List<long> _seqs = new List<long>();
        readonly List<long> _done = new List<long>();

        public bool InTransition { get { return Target != null; } }

        /// <summary>Show a state at once (welcome, safe, end), cancelling any transition.</summary>
        public void ShowNow(SceneState state)
        {
            Shown = state == null ? null : state.Copy();
            From = null;
            Target = null;
            _seqs.Clear();
        }

        public void Begin(SceneState state, double transitionS, long seq, double now)
        {
            if (Target != null && Target.Equals(state)) { _seqs.Add(seq); return; }
            if (transitionS <= 0 || (Target == null && state.Equals(Shown)))
            {
                ShowNow(state);
                _done.Add(seq);
                return;
            }
            From = Shown == null ? state.Copy() : Shown.Copy();
            Target = state.Copy();
            _start = now;
            _duration = transitionS;
            _seqs.Clear();
            _seqs.Add(seq);
        }

        /// <summary>0..1 through the running transition (1 when none).</summary>
        public double Progress(double now)
        {
            if (Target == null) return 1.0;
            return Math.Max(0.0, Math.Min(1.0, (now - _start) / _duration));
        }

        /// <summary>Advance; returns the seqs that completed since the last call (to ack).</summary>
        public List<long> Update(double now)
        {
            if (Target != null && now - _start >= _duration)
            {
                var seqs = new List<long>(_seqs);
                ShowNow(Target);
                _done.AddRange(seqs);
            }
            var result = new List<long>(_done);
            _done.Clear();
            return result;
        }
    }
}
