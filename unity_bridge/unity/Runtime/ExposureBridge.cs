// The Unity component: put one ExposureBridge in the scene, add ParameterBinding components for
// the scenario's parameters, press Play. It connects to the controller, shows what the controller
// asks for, fades between scenes, acks them, and falls back to the safe state by itself when the
// controller goes silent (PROTOCOL.md rules 4-7). Panic, SUDS and headset on/off are sent with
// SendPanic / SendSuds / SendRemoved / SendWorn / SendGaze (see Samples~ for a slider and a button).
//
// Threading: all NetMQ work happens on BridgeConnection's thread; this component only drains its
// queue in Update and posts acks and events back.
using System;
using System.Collections.Generic;
using System.Threading.Tasks;
using ExposureCtrl.Bridge.Protocol;
using ExposureCtrl.Bridge.Transport;
using NetMQ;
using UnityEngine;
using UnityEngine.Events;

namespace ExposureCtrl.Bridge
{
    [DisallowMultipleComponent]
    [AddComponentMenu("Exposure Ctrl/Exposure Bridge")]
    public sealed class ExposureBridge : MonoBehaviour
    {
        [Header("Controller")]
        [Tooltip("The controller's address, e.g. tcp://192.168.1.10:5556 (CURVE required beyond loopback).")]
        public string address = "tcp://127.0.0.1:5556";
        [Tooltip("Name this headset reports in hello.")]
        public string clientName = "unity";

        [Header("CURVE (leave empty on loopback)")]
        [Tooltip("Path of headset.key_secret (from `exposure-ctrl keys generate`).")]
        public string headsetSecretKeyFile = "";
        [Tooltip("Path of the controller's public controller.key.")]
        public string controllerPublicKeyFile = "";

        [Header("Scene")]
        [Tooltip("Bindings to drive; empty = every ParameterBinding below this object.")]
        public List<ParameterBinding> bindings = new List<ParameterBinding>();

        [Header("Events")]
        public UnityEvent onSafeShown = new UnityEvent();
        public UnityEvent<string> onEnded = new UnityEvent<string>();
        public UnityEvent<string> onStatusChanged = new UnityEvent<string>();

        readonly SceneDriver _driver = new SceneDriver();
        readonly Dictionary<string, ParameterBinding> _byParameter = new Dictionary<string, ParameterBinding>();
        BridgeConnection _connection;
        bool _failureReported;

        public HeadsetStatus Status { get; private set; }
        public SceneState Shown { get { return _driver.Shown; } }

        static double Now { get { return Time.realtimeSinceStartupAsDouble; } }

        void Awake()
        {
            AsyncIO.ForceDotNet.Force();  // NetMQ on Mono/IL2CPP: managed sockets, before any socket exists
            if (bindings.Count == 0) bindings.AddRange(GetComponentsInChildren<ParameterBinding>());
            foreach (var b in bindings)
            {
                if (b == null || string.IsNullOrEmpty(b.parameterId)) continue;
                if (_byParameter.ContainsKey(b.parameterId))
                    Debug.LogWarning("ExposureBridge: two bindings for parameter '" + b.parameterId + "'; using the first");
                else
                    _byParameter[b.parameterId] = b;
            }
        }

        void OnEnable()
        {
            var settings = new BridgeSettings { Address = address, Client = clientName, Parameters = new List<string>(_byParameter.Keys) };
            if (!string.IsNullOrEmpty(controllerPublicKeyFile))
            {
                var mine = ZCert.Load(headsetSecretKeyFile);
                settings.HeadsetPublicKey = mine.PublicKey;
                settings.HeadsetSecretKey = mine.SecretKey;
                settings.ControllerPublicKey = ZCert.Load(controllerPublicKeyFile).PublicKey;
            }
            _connection = new BridgeConnection(settings);
            _connection.Start();
        }

        void Update()
        {
            if (_connection == null) return;
            if (_connection.Failure != null && !_failureReported)
            {
                _failureReported = true;  // the network thread already queued the safe state
                Debug.LogError("ExposureBridge: network thread failed: " + _connection.Failure);
            }
            HeadsetCommand c;
            while (_connection.ToMain.TryDequeue(out c)) Apply(c);
            double now = Now;
            var done = _driver.Update(now);
            _connection.SceneShown(done);
            Render(now);
        }

        void Apply(HeadsetCommand c)
        {
            switch (c.Kind)
            {
                case CommandKind.ShowState:
                    if (c.Seq == 0) _driver.ShowNow(c.State);  // welcome: at once
                    else _driver.Begin(c.State, c.TransitionS, c.Seq, Now);
                    break;
                case CommandKind.ShowSafe:
                    if (c.State != null) _driver.ShowNow(c.State);
                    onSafeShown.Invoke();
                    break;
                case CommandKind.Ended:
                    onEnded.Invoke(c.Reason);
                    break;
                case CommandKind.Refused:
                    Debug.LogError("ExposureBridge: the controller refused this headset: " + c.Reason);
                    break;
                case CommandKind.Status:
                    Status = c.Status;
                    onStatusChanged.Invoke(c.Status.ToString());
                    break;
            }
        }

        void Render(double now)
        {
            var shown = _driver.Shown;
            if (shown == null) return;
            var from = _driver.InTransition ? _driver.From : shown;
            var to = _driver.InTransition ? _driver.Target : shown;
            float t = (float)_driver.Progress(now);
            foreach (var kv in _byParameter)
            {
                StateValue a, b;
                if (from.TryGet(kv.Key, out a) && to.TryGet(kv.Key, out b)) kv.Value.Apply(a, b, t);
            }
        }

        public void SendPanic() { if (_connection != null) _connection.SendEvent("panic", null); }
        public void SendSuds(int value) { if (_connection != null) _connection.SendEvent("suds", (long)Mathf.Clamp(value, 0, 100)); }
        public void SendRemoved() { if (_connection != null) _connection.SendEvent("removed", null); }
        public void SendWorn() { if (_connection != null) _connection.SendEvent("worn", null); }
        public void SendGaze(bool inView) { if (_connection != null) _connection.SendEvent("gaze", inView); }

        // Unity calls OnApplicationQuit, then OnDisable, then OnDestroy.
        void OnDisable() { StopConnection("disabled"); }

        void OnApplicationQuit()
        {
            StopConnection("quit");
            // NetMQConfig.Cleanup can hang on some platforms: run it once, at quit, with a watchdog
            var cleanup = Task.Run(() => NetMQConfig.Cleanup(false));
            if (!cleanup.Wait(TimeSpan.FromMilliseconds(500))) Debug.LogWarning("ExposureBridge: NetMQ cleanup timed out");
        }

        void StopConnection(string reason)
        {
            if (_connection == null) return;
            _connection.SendBye(reason);
            if (!_connection.Stop(500)) Debug.LogWarning("ExposureBridge: network thread did not stop within 500 ms");
            _connection.Dispose();
            _connection = null;
        }
    }
}
