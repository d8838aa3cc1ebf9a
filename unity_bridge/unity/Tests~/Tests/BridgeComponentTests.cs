// ExposureBridge (the MonoBehaviour) driven by hand the way Unity would: Awake, OnEnable, Update
// every "frame", OnApplicationQuit; over the in-memory NetMQ stand-in.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Reflection;
using System.Threading;
using ExposureCtrl.Bridge.Protocol;
using NetMQ;

namespace ExposureCtrl.Bridge.Tests
{
    public sealed class RecordingBinding : ParameterBinding
    {
        public readonly List<string> Calls = new List<string>();
        public float LastProgress = -1;

        public override void Apply(StateValue from, StateValue to, float progress)
        {
            LastProgress = progress;
            Calls.Add(from + "->" + to + "@" + (progress >= 1f ? "1" : progress <= 0f ? "0" : "mid"));
        }
    }

    [TestFixture]
    public static class BridgeComponentTests
    {
        static void Call(object o, string method)
        {
            o.GetType().GetMethod(method, BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public).Invoke(o, null);
        }

        static T Next<T>(StubPeer peer, ExposureBridge bridge) where T : Message
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (DateTime.UtcNow < deadline)
            {
                Call(bridge, "Update");
                byte[] f;
                if (peer.FromHeadset.TryTake(out f, 10))
                {
                    var m = Codec.Unpack(f);
                    if (m is T) return (T)m;
                }
            }
            throw new AssertionFailed("no " + typeof(T).Name + " within 5 s");
        }

        static void UpdateUntil(ExposureBridge bridge, Func<bool> cond, string what)
        {
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (!cond())
            {
                if (DateTime.UtcNow > deadline) throw new AssertionFailed(what + " within 5 s");
                Call(bridge, "Update");
                Thread.Sleep(5);
            }
        }

        static void Send(StubPeer peer, Message m, long seq) { m.Seq = seq; m.T = 1.0; peer.ToHeadset.Add(Codec.Pack(m)); }

        public static void TestTheComponentShowsFadesAcksAndQuitsCleanly()
        {
            var go = new UnityEngine.GameObject();
            var jar = new RecordingBinding { parameterId = "jar", gameObject = go };
            var size = new RecordingBinding { parameterId = "size", gameObject = go };
            var bridge = new ExposureBridge { address = "stub://component-1", clientName = "component", gameObject = go };
            go.Components.Add(bridge);
            go.Components.Add(jar);
            go.Components.Add(size);
            var peer = StubNetwork.Controller(bridge.address);
            int forced = AsyncIO.ForceDotNet.Calls, cleanups = NetMQConfig.Cleanups;
            bool safeShown = false;
            bridge.onSafeShown.AddListener(() => safeShown = true);

            Call(bridge, "Awake");
            Assert.Equal(forced + 1, AsyncIO.ForceDotNet.Calls, "ForceDotNet.Force() in Awake");
            Call(bridge, "OnEnable");
            var hello = Next<Hello>(peer, bridge);
            Assert.Equal("jar,size", string.Join(",", hello.Parameters.OrderBy(p => p)), "hello lists the bindings' parameters");

            var start = new SceneState().Set("jar", "closed").Set("size", "tiny");
            var safe = new SceneState().Set("jar", "covered").Set("size", "tiny");
            Send(peer, new Welcome { Session = "S", Scenario = "spider", State = start, SafeState = safe, HeartbeatS = 0.5, TimeoutS = 5.0 }, 1);
            UpdateUntil(bridge, () => jar.Calls.Contains("closed->closed@1"), "welcome state applied");
            Assert.Equal(HeadsetStatus.Active, bridge.Status, "active");

            var next = new SceneState().Set("jar", "open").Set("size", "large");
            Send(peer, new SceneMessage { State = next, TransitionS = 0.3 }, 2);
            UpdateUntil(bridge, () => jar.Calls.Contains("closed->open@mid"), "fading");
            Assert.Equal(0, peer.FromHeadset.Count(f => Codec.Unpack(f) is Ack), "no ack during the fade");
            var ack = Next<Ack>(peer, bridge);
            Assert.Equal(2L, ack.AckSeq, "acked after the fade");
            Assert.True(bridge.Shown.Equals(next), "scene shown");
            Assert.True(size.Calls.Last() == "large->large@1", "final value applied: " + size.Calls.Last());

            bridge.SendPanic();
            Assert.Equal("panic", Next<EventMessage>(peer, bridge).Kind, "panic sent");
            Send(peer, new SafeMessage { Reason = "panic" }, 3);
            UpdateUntil(bridge, () => safeShown, "safe shown");
            Assert.True(bridge.Shown.Equals(safe), "safe state");
            bridge.SendSuds(250);
            var suds = Next<EventMessage>(peer, bridge);
            Assert.True(suds.Kind == "suds" && (long)suds.Value == 100, "suds clamped to 100");

            Call(bridge, "OnApplicationQuit");
            Assert.Equal("quit", Next<ByeMessage>(peer, bridge).Reason, "bye on quit");
            Assert.Equal(cleanups + 1, NetMQConfig.Cleanups, "NetMQConfig.Cleanup once, at quit");
            Call(bridge, "OnDisable");  // Unity calls it after quit: nothing left to stop
            Assert.Equal(cleanups + 1, NetMQConfig.Cleanups, "no second cleanup");
        }
    }
}
