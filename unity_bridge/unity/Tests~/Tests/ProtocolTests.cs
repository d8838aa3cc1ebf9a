// HeadsetProtocol, SceneDriver and ZCert: the headset's logic without sockets or threads.
using System;
using System.Collections.Generic;
using System.Linq;
using ExposureCtrl.Bridge.Protocol;

namespace ExposureCtrl.Bridge.Tests
{
    [TestFixture]
    public static class ProtocolTests
    {
        static readonly string[] Params = { "jar", "distance_m", "size" };

        static SceneState Start() { return new SceneState().Set("jar", "closed").Set("distance_m", 2.4).Set("size", "small"); }
        static SceneState Safe() { return new SceneState().Set("jar", "covered").Set("distance_m", 3.0).Set("size", "tiny"); }
        static SceneState Closer() { return new SceneState().Set("jar", "open").Set("distance_m", 1.2).Set("size", "medium"); }

        static byte[] Frame(Message m, long seq) { m.Seq = seq; m.T = 0.5; return Codec.Pack(m); }

        static List<Message> Sent(HeadsetProtocol p)
        {
            var l = p.Outbox.Select(Codec.Unpack).ToList();
            p.Outbox.Clear();
            return l;
        }

        static List<HeadsetCommand> Commands(HeadsetProtocol p)
        {
            var l = new List<HeadsetCommand>(p.Commands);
            p.Commands.Clear();
            return l;
        }

        static HeadsetProtocol Welcomed(double at = 0)
        {
            var p = new HeadsetProtocol("quest3", Params);
            p.Start(at);
            p.OnFrame(Frame(new Welcome { Session = "S", Scenario = "spider", State = Start(), SafeState = Safe(), HeartbeatS = 1.0, TimeoutS = 3.0 }, 1), at);
            Sent(p);
            Commands(p);
            return p;
        }

        public static void TestHelloComesFirst()
        {
            var p = new HeadsetProtocol("quest3", Params);
            p.Start(0);
            var sent = Sent(p);
            Assert.Equal(1, sent.Count, "one frame");
            var h = sent[0] as Hello;
            Assert.True(h != null, "it is a hello");
            Assert.Equal(1L, h.Seq, "seq 1");
            Assert.Equal("quest3", h.Client, "client");
            Assert.Equal("jar,distance_m,size", string.Join(",", h.Parameters), "parameters");
            Assert.Equal(HeadsetStatus.Connecting, p.Status, "connecting");
        }

        public static void TestWelcomeShowsStateAtOnceAndAdoptsTimers()
        {
            var p = new HeadsetProtocol("q", Params);
            p.Start(0);
            p.OnFrame(Frame(new Welcome { Session = "S", Scenario = "x", State = Start(), SafeState = Safe(), HeartbeatS = 0.5, TimeoutS = 2.0 }, 1), 0.1);
            var cmds = Commands(p);
            var show = cmds.First(c => c.Kind == CommandKind.ShowState);
            Assert.True(show.State.Equals(Start()), "welcome state shown");
            Assert.Equal(0L, show.Seq, "no ack for a welcome");
            Assert.Equal(0.0, show.TransitionS, "at once");
            Assert.True(cmds.Any(c => c.Kind == CommandKind.Status && c.Status == HeadsetStatus.Active), "status active");
            Assert.Equal(0.5, p.HeartbeatS, "heartbeat_s adopted");
            Assert.Equal(2.0, p.TimeoutS, "timeout_s adopted");
        }

        public static void TestSceneIsShownThenAcked()
        {
            var p = Welcomed();
            p.OnFrame(Frame(new SceneMessage { State = Closer(), TransitionS = 1.5 }, 2), 0.2);
            var show = Commands(p).Single(c => c.Kind == CommandKind.ShowState);
            Assert.Equal(2L, show.Seq, "seq to ack");
            Assert.Equal(1.5, show.TransitionS, "transition");
            Assert.Equal(0, p.Outbox.Count, "no ack before the scene is shown");
            p.SceneShown(new List<long> { 2 }, 1.7);
            var ack = Sent(p).Single() as Ack;
            Assert.True(ack != null && ack.AckSeq == 2, "ack 2");
        }

        public static void TestHeartbeatOnlyWhenIdle()
        {
            var p = Welcomed(0);
            p.Tick(0.9);
            Assert.Equal(0, p.Outbox.Count, "nothing before heartbeat_s");
            p.OnFrame(Frame(new Heartbeat(), 2), 0.95);
            p.Tick(1.0);
            var hb = Sent(p);
            Assert.True(hb.Count == 1 && hb[0] is Heartbeat, "heartbeat after 1 s of sending nothing");
            p.Tick(1.5);
            Assert.Equal(0, p.Outbox.Count, "not again before another heartbeat_s");
        }

        public static void TestControllerSilenceFallsBackToSafeAndReconnects()
        {
            var p = Welcomed(0);
            p.Tick(2.9);
            Commands(p);
            Assert.Equal(HeadsetStatus.Active, p.Status, "still active at 2.9 s");
            p.Tick(3.0);
            var cmds = Commands(p);
            var safe = cmds.Single(c => c.Kind == CommandKind.ShowSafe);
            Assert.True(safe.State.Equals(Safe()), "safe state shown by itself");
            Assert.Equal("controller lost", safe.Reason, "reason");
            Assert.Equal(HeadsetStatus.Lost, p.Status, "lost");
            Assert.True(p.ReconnectRequested, "asks for a new connection");
            Sent(p);
            p.OnReconnected(3.1);
            var hello = Sent(p).Single() as Hello;
            Assert.True(hello != null && hello.Seq == 1, "hello again, seq restarts");
            p.OnFrame(Frame(new Welcome { Session = "S", Scenario = "spider", State = Closer(), SafeState = Safe(), HeartbeatS = 1.0, TimeoutS = 3.0 }, 1), 3.2);
            Assert.True(Commands(p).Any(c => c.Kind == CommandKind.ShowState && c.State.Equals(Closer())), "recovers with the full current state");
            Assert.Equal(HeadsetStatus.Active, p.Status, "active again");
        }

        public static void TestNoWelcomeMeansANewConnection()
        {
            var p = new HeadsetProtocol("q", Params);
            p.Start(0);
            p.Tick(2.99);
            Assert.True(!p.ReconnectRequested, "waits timeout_s");
            p.Tick(3.0);
            Assert.True(p.ReconnectRequested, "then reconnects");
        }

        public static void TestHelloFirstBringsAnotherHello()
        {
            var p = Welcomed();
            p.OnFrame(Frame(new ErrorMessage { Code = "hello_first", Text = "send hello first" }, 1), 1.0);
            Assert.True(Sent(p).Single() is Hello, "hello sent again");
            Assert.Equal(HeadsetStatus.Connecting, p.Status, "waiting for welcome");
        }

        public static void TestRefusalStops()
        {
            var p = new HeadsetProtocol("q", new[] { "jar" });
            p.Start(0);
            p.OnFrame(Frame(new ErrorMessage { Code = "unsupported_parameters", Text = "missing parameters: size" }, 1), 0.1);
            Assert.Equal(HeadsetStatus.Refused, p.Status, "refused");
            Assert.True(Commands(p).Any(c => c.Kind == CommandKind.Refused && c.Reason.Contains("missing parameters: size")), "reason passed on");
            Assert.True(p.Stopped, "stopped");
        }

        public static void TestEndShowsSafeAndStops()
        {
            var p = Welcomed();
            p.OnFrame(Frame(new EndMessage { Reason = "replaced" }, 3), 1.0);
            var cmds = Commands(p);
            Assert.True(cmds.Any(c => c.Kind == CommandKind.ShowSafe && c.State.Equals(Safe())), "safe shown");
            Assert.True(cmds.Any(c => c.Kind == CommandKind.Ended && c.Reason == "replaced"), "ended");
            Assert.True(p.Stopped, "stopped");
        }

        public static void TestSafeIsShownAtOnce()
        {
            var p = Welcomed();
            p.OnFrame(Frame(new SafeMessage { Reason = "panic" }, 3), 1.0);
            var c = Commands(p).Single();
            Assert.True(c.Kind == CommandKind.ShowSafe && c.State.Equals(Safe()) && c.Reason == "panic", "ShowSafe(panic)");
        }

        public static void TestMalformedAndUnknownFramesAreCountedAndIgnored()
        {
            var p = Welcomed();
            p.OnFrame(new byte[] { 0xc1 }, 1.0);
            p.OnFrame(VectorTests.Bytes("84a17601a474797065a874656c65706f7274a373657101a174cb3fe0000000000000"), 1.0);
            Assert.Equal(1, p.Malformed, "malformed counted");
            Assert.Equal(1, p.UnknownTypes, "unknown type counted");
            Assert.Equal(0, p.Commands.Count, "nothing to do");
            Assert.Equal(0, p.Outbox.Count, "nothing sent");
        }

        public static void TestEventsAreValidatedAndSentOnlyWhenActive()
        {
            var fresh = new HeadsetProtocol("q", Params);
            fresh.Start(0);
            Sent(fresh);
            Assert.True(!fresh.SendEvent("panic", null, 0.1), "not sent before welcome");
            var p = Welcomed();
            Assert.Throws<ArgumentException>(() => p.SendEvent("suds", 101, 1.0), "suds range");
            Assert.Throws<ArgumentException>(() => p.SendEvent("gaze", 1, 1.0), "gaze bool");
            Assert.True(p.SendEvent("panic", null, 1.0), "panic sent");
            Assert.True(p.SendEvent("suds", 40, 1.0), "suds sent");
            var sent = Sent(p);
            var panic = (EventMessage)sent[0];
            var suds = (EventMessage)sent[1];
            Assert.True(panic.Kind == "panic" && panic.Value == null, "panic without value");
            Assert.True(suds.Kind == "suds" && (long)suds.Value == 40, "suds 40");
        }

        public static void TestSceneDriverJoinsReplacesAndCompletes()
        {
            var d = new SceneDriver();
            d.ShowNow(Start());
            d.Begin(Closer(), 1.0, 2, 10.0);
            Assert.True(d.InTransition && d.Shown.Equals(Start()), "old scene until the end");
            Assert.Equal(0.5, d.Progress(10.5), "progress");
            d.Begin(Closer(), 1.0, 3, 10.5);  // a re-send joins
            Assert.Equal(0, d.Update(10.9).Count, "not done yet");
            var done = d.Update(11.0);
            Assert.Equal("2,3", string.Join(",", done), "both seqs acked");
            Assert.True(d.Shown.Equals(Closer()) && !d.InTransition, "shown");
            d.Begin(Closer(), 5.0, 4, 12.0);  // already shown: done at once
            Assert.Equal("4", string.Join(",", d.Update(12.0)), "immediate");
            d.Begin(Start(), 1.0, 5, 13.0);
            d.Begin(Safe(), 1.0, 6, 13.2);  // replaces: 5 is never acked
            Assert.Equal("6", string.Join(",", d.Update(14.5)), "only the replacing scene");
            d.Begin(Start(), 2.0, 7, 15.0);
            d.ShowNow(Safe());  // safe cancels the transition
            Assert.Equal(0, d.Update(20.0).Count, "cancelled scene never acked");
        }

        public static void TestZCertParsesKeyFiles()
        {
            var text = "#   ZeroMQ CURVE **Secret** Certificate\n\nmetadata\ncurve\n    public-key = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n    secret-key = \"JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6\"\n";
            var c = ZCert.Parse(text);
            Assert.Equal("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7", c.PublicKey, "public key");
            Assert.Equal("JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6", c.SecretKey, "secret key");
            Assert.True(ZCert.Parse("curve\n public-key = \"rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\"\n").SecretKey == null, "public file");
            Assert.Throws<FormatException>(() => ZCert.Parse("curve\n public-key = \"short\"\n"), "bad length");
            Assert.Throws<FormatException>(() => ZCert.Parse("nothing here"), "no key");
        }
    }
}
