// BridgeConnection's network thread over the in-memory NetMQ stand-in (Tests~/Stubs).
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;
using ExposureCtrl.Bridge.Protocol;
using ExposureCtrl.Bridge.Transport;
using NetMQ;

namespace ExposureCtrl.Bridge.Tests
{
    [TestFixture]
    public static class ConnectionTests
    {
        static T Next<T>(StubPeer peer) where T : Message
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (DateTime.UtcNow < deadline)
            {
                byte[] f;
                if (peer.FromHeadset.TryTake(out f, 100))
                {
                    var m = Codec.Unpack(f);
                    if (m is T) return (T)m;
                }
            }
            throw new AssertionFailed("no " + typeof(T).Name + " from the headset within 5 s");
        }

        static HeadsetCommand NextCommand(ConcurrentQueue<HeadsetCommand> q, CommandKind kind)
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (DateTime.UtcNow < deadline)
            {
                HeadsetCommand c;
                if (q.TryDequeue(out c)) { if (c.Kind == kind) return c; }
                else Thread.Sleep(5);
            }
            throw new AssertionFailed("no " + kind + " command within 5 s");
        }

        static void Send(StubPeer peer, Message m, long seq) { m.Seq = seq; m.T = 1.0; peer.ToHeadset.Add(Codec.Pack(m)); }

        public static void TestHandshakeSceneAckEventsByeAndStop()
        {
            var settings = new BridgeSettings { Address = "stub://conn-1", Client = "unity-test", Parameters = new List<string> { "jar", "size" } };
            var peer = StubNetwork.Controller(settings.Address);
            var conn = new BridgeConnection(settings);
            conn.Start();
            try
            {
                var hello = Next<Hello>(peer);
                Assert.Equal("unity-test", hello.Client, "hello first, with the client name");
                var state = new SceneState().Set("jar", "closed").Set("size", "tiny");
                var safe = new SceneState().Set("jar", "covered").Set("size", "tiny");
                Send(peer, new Welcome { Session = "S", Scenario = "spider", State = state, SafeState = safe, HeartbeatS = 0.2, TimeoutS = 2.0 }, 1);
                var shown = NextCommand(conn.ToMain, CommandKind.ShowState);
                Assert.True(shown.State.Equals(state) && shown.Seq == 0, "welcome reaches the main thread");
                var next = new SceneState().Set("jar", "open").Set("size", "large");
                Send(peer, new SceneMessage { State = next, TransitionS = 0.0 }, 2);
                var scene = NextCommand(conn.ToMain, CommandKind.ShowState);
                Assert.Equal(2L, scene.Seq, "scene seq");
                conn.SceneShown(new List<long> { scene.Seq });
                Assert.Equal(2L, Next<Ack>(peer).AckSeq, "ack from the network thread");
                Assert.True(Next<Heartbeat>(peer) != null, "heartbeats when idle");
                conn.SendEvent("panic", null);
                Assert.Equal("panic", Next<EventMessage>(peer).Kind, "panic");
                conn.SendBye("quit");
                Assert.Equal("quit", Next<ByeMessage>(peer).Reason, "bye");
                Assert.True(conn.Stop(2000), "thread joined");
                Assert.True(!conn.Running, "not running");
                Assert.Equal(1, peer.Disposes, "socket disposed");
                Assert.Equal(TimeSpan.Zero, peer.LastLinger, "linger 0");
                Assert.True(conn.Failure == null, "no failure");
            }
            finally
            {
                conn.Dispose();
            }
        }

        public static void TestControllerSilenceMeansSafeAndANewSocket()
        {
            var settings = new BridgeSettings { Address = "stub://conn-2", Client = "u", Parameters = new List<string> { "jar" } };
            var peer = StubNetwork.Controller(settings.Address);
            var conn = new BridgeConnection(settings);
            conn.Start();
            try
            {
                Next<Hello>(peer);
                var safe = new SceneState().Set("jar", "covered");
                Send(peer, new Welcome { Session = "S", Scenario = "x", State = new SceneState().Set("jar", "open"), SafeState = safe, HeartbeatS = 0.05, TimeoutS = 0.2 }, 1);
                NextCommand(conn.ToMain, CommandKind.ShowState);
                var fallback = NextCommand(conn.ToMain, CommandKind.ShowSafe);  // the test stays silent
                Assert.True(fallback.State.Equals(safe) && fallback.Reason == "controller lost", "safe by itself");
                var again = Next<Hello>(peer);
                Assert.Equal(1L, again.Seq, "hello on a new connection");
                Assert.True(peer.Connects >= 2 && peer.Disposes >= 1, "old socket disposed, new one connected");
            }
            finally
            {
                Assert.True(conn.Stop(2000), "thread joined");
                conn.Dispose();
            }
        }

        public static void TestBridgeComponentCompilesAgainstTheStubs()
        {
            // ExposureBridge and the samples are compiled into this assembly; check they exist.
            Assert.True(typeof(ExposureBridge).IsSubclassOf(typeof(UnityEngine.MonoBehaviour)), "ExposureBridge is a MonoBehaviour");
            Assert.True(typeof(ExposureCtrl.Bridge.Samples.SpiderBinding).IsSubclassOf(typeof(ParameterBinding)), "sample binding");
        }
    }
}
