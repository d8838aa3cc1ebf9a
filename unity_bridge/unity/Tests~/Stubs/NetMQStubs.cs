// Stand-ins for the NetMQ / AsyncIO API surface the package uses (same names and signatures as
// NetMQ 4.0.1), backed by an in-memory "network" so BridgeConnection's thread can be tested:
// StubNetwork.Controller(address) gives the test the controller's end of a connection.
using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;

namespace AsyncIO
{
    public static class ForceDotNet
    {
        public static int Calls;
        public static void Force() { Calls++; }
    }
}

namespace NetMQ
{
    public static class NetMQConfig
    {
        public static int Cleanups;
        public static void Cleanup(bool block = true) { Cleanups++; }
    }

    public class NetMQCertificate
    {
        public readonly string SecretKeyZ85, PublicKeyZ85;
        public NetMQCertificate(string secretKey, string publicKey) { SecretKeyZ85 = secretKey; PublicKeyZ85 = publicKey; }
        NetMQCertificate(string publicKey) { PublicKeyZ85 = publicKey; }
        public static NetMQCertificate FromPublicKey(string publicKey) { return new NetMQCertificate(publicKey); }
    }

    public class SocketOptions
    {
        public TimeSpan Linger = TimeSpan.FromSeconds(30);
        public TimeSpan ReconnectInterval = TimeSpan.FromMilliseconds(100);
        public NetMQCertificate CurveCertificate { set { Certificate = value; } }
        public NetMQCertificate CurveServerCertificate { set { ServerCertificate = value; } }
        public NetMQCertificate Certificate, ServerCertificate;
    }

    /// <summary>The test's side of one connection (a controller).</summary>
    public sealed class StubPeer
    {
        public readonly BlockingCollection<byte[]> FromHeadset = new BlockingCollection<byte[]>();
        public readonly BlockingCollection<byte[]> ToHeadset = new BlockingCollection<byte[]>();
        public int Connects, Disposes;
        public TimeSpan LastLinger;
    }

    public static class StubNetwork
    {
        static readonly ConcurrentDictionary<string, StubPeer> Peers = new ConcurrentDictionary<string, StubPeer>();
        public static StubPeer Controller(string address) { return Peers.GetOrAdd(address, a => new StubPeer()); }
    }

    public interface IOutgoingSocket { bool TrySend(byte[] data, TimeSpan timeout); }
    public interface IReceivingSocket { bool TryReceive(TimeSpan timeout, out byte[] data, out bool more); }

    public abstract class NetMQSocket : IOutgoingSocket, IReceivingSocket, IDisposable
    {
        public readonly SocketOptions Options = new SocketOptions();
        StubPeer _peer;
        public bool IsDisposed { get; private set; }

        public void Connect(string address)
        {
            _peer = StubNetwork.Controller(address);
            Interlocked.Increment(ref _peer.Connects);
        }

        public bool TrySend(byte[] data, TimeSpan timeout)
        {
            if (IsDisposed) throw new ObjectDisposedException("socket");
            _peer.FromHeadset.Add(data);
            return true;
        }

        public bool TryReceive(TimeSpan timeout, out byte[] data, out bool more)
        {
            if (IsDisposed) throw new ObjectDisposedException("socket");
            more = false;
            return _peer.ToHeadset.TryTake(out data, timeout);
        }

        public void Dispose()
        {
            if (IsDisposed) return;
            IsDisposed = true;
            if (_peer != null) { Interlocked.Increment(ref _peer.Disposes); _peer.LastLinger = Options.Linger; }
        }
    }

    public static class OutgoingSocketExtensions
    {
        public static bool TrySendFrame(this IOutgoingSocket socket, TimeSpan timeout, byte[] data, bool more = false)
        {
            return socket.TrySend(data, timeout);
        }
    }

    public static class ReceivingSocketExtensions
    {
        public static bool TryReceiveFrameBytes(this IReceivingSocket socket, TimeSpan timeout, out byte[] bytes, out bool more)
        {
            return socket.TryReceive(timeout, out bytes, out more);
        }
    }
}

namespace NetMQ.Sockets
{
    public class DealerSocket : NetMQ.NetMQSocket { }
}
