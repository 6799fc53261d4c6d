// The core's tests, run under Mono by tests/sdk/test_unity_sdk.py (which builds them with mcs
// and starts Roost): a small runner — every public static void method named Test* of this
// class, in order; the exit code counts the failures. Tests named Live* send to the Roost at
// ROOST_URL with ROOST_KEY, and the Python side checks by SQL what arrived.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading.Tasks;
using Roost.Game;

public static class Tests
{
    // ---- the runner -------------------------------------------------------------------
    public static int Main(string[] args)
    {
        var failures = 0;
        var only = args.Length > 0 ? args[0] : null;
        foreach (var method in typeof(Tests).GetMethods(BindingFlags.Public | BindingFlags.Static)
                     .Where(m => m.Name.StartsWith("Test") || m.Name.StartsWith("Live"))
                     .OrderBy(m => m.MetadataToken))
        {
            if (only != null && !method.Name.StartsWith(only)) continue;
            try
            {
                method.Invoke(null, null);
                Console.WriteLine("ok   " + method.Name);
            }
            catch (TargetInvocationException e)
            {
                failures += 1;
                Console.WriteLine("FAIL " + method.Name + ": " + e.InnerException);
            }
        }
        return failures;
    }

    private static void Equal<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
            throw new Exception(what + ": expected " + expected + ", got " + actual);
    }

    private static void True(bool condition, string what)
    {
        if (!condition) throw new Exception(what);
    }

    // ---- fakes for the outside world ---------------------------------------------------
    private sealed class FakeTransport : ITransport
    {
        public readonly List<string> Bodies = new List<string>();
        public readonly Queue<int> Answers = new Queue<int>();

        public Task<int> SendAsync(string url, string apiKey, string body)
        {
            Bodies.Add(body);
            return Task.FromResult(Answers.Count > 0 ? Answers.Dequeue() : 200);
        }

        public int Events(int body) { return Bodies[body].Split(new[] { "\"event_id\"" }, StringSplitOptions.None).Length - 1; }
    }

    private sealed class Clock
    {
        public DateTime Now = new DateTime(2026, 3, 1, 12, 0, 0, DateTimeKind.Utc);
        public DateTime Get() { return Now; }
    }

    private static GameClient Make(FakeTransport transport, Clock clock, IQueueStore store = null)
    {
        var settings = new GameSettings { ApiKey = "key", BuildVersion = "1.0.0", Transport = transport, Store = store };
        return new GameClient(settings, clock.Get, new Random(7));
    }

    // ---- the core ----------------------------------------------------------------------
    public static void TestTheFirstEventStartsASessionAndThirtyEventsSendABatch()
    {
        var transport = new FakeTransport();
        var client = Make(transport, new Clock());
        client.TrackDesign("CTA:Clicked", new TrackOptions { Dim01 = "pricing" });
        Equal(2, client.Queued, "Session:Start and the event wait");
        Equal(0, transport.Bodies.Count, "nothing sent before 30 events or 30 s");
        for (var i = 0; i < 28; i++) client.TrackProgression("Start:Level" + i);
        Equal(1, transport.Bodies.Count, "the 30th event sends the batch");
        Equal(30, transport.Events(0), "all 30 in it");
        True(transport.Bodies[0].StartsWith("{\"events\":[{\"event_id\""), "the dialect's envelope");
        True(transport.Bodies[0].Contains("\"name\":\"Session:Start\""), "Session:Start first");
        Equal(0, client.Queued, "acknowledged: gone from the queue");
    }

    public static void TestAnIntervalSendsWhatWaits()
    {
        var transport = new FakeTransport();
        var clock = new Clock();
        var client = Make(transport, clock);
        client.TrackResource("Source:Gold", 50);
        client.TickAsync().Wait();
        Equal(0, transport.Bodies.Count, "before 30 s");
        clock.Now = clock.Now.AddSeconds(31);
        client.TickAsync().Wait();
        Equal(1, transport.Bodies.Count, "after 30 s");
        True(transport.Bodies[0].Contains("\"value\":50"), "the value");
    }

    public static void TestServerErrorsAreRetriedWithBackoffAndAFourHundredIsDropped()
    {
        var transport = new FakeTransport();
        var clock = new Clock();
        var client = Make(transport, clock);
        client.TrackDesign("A:B");
        transport.Answers.Enqueue(503);
        transport.Answers.Enqueue(0);  // then no answer at all
        client.FlushAsync(force: true).Wait();
        Equal(2, client.Queued, "kept after a 503");
        client.TickAsync().Wait();
        Equal(1, transport.Bodies.Count, "no retry before the backoff");
        clock.Now = clock.Now.AddSeconds(1.01);
        client.TickAsync().Wait();
        Equal(2, transport.Bodies.Count, "retried after ~1 s");
        Equal(2, client.Failures, "two failures in a row");
        client.TickAsync().Wait();
        clock.Now = clock.Now.AddSeconds(1.5);
        client.TickAsync().Wait();
        Equal(2, transport.Bodies.Count, "the second wait is longer (1–2 s)");
        clock.Now = clock.Now.AddSeconds(0.6);
        client.TickAsync().Wait();
        Equal(3, transport.Bodies.Count, "retried");
        Equal(0, client.Queued, "stored at last");
        client.TrackDesign("Bad:Event");
        transport.Answers.Enqueue(400);
        client.FlushAsync(force: true).Wait();
        Equal(0, client.Queued, "a 400 drops the batch: it would never pass");
    }

    public static void TestTheQueueSurvivesARestart()
    {
        var directory = Path.Combine(Path.GetTempPath(), "roost-test-" + Guid.NewGuid());
        var transport = new FakeTransport();
        var first = Make(transport, new Clock(), new FileQueueStore(directory));
        first.TrackProgression("Complete:Tutorial");
        transport.Answers.Enqueue(0);
        first.FlushAsync(force: true).Wait();
        Equal(2, first.Queued, "an outage: kept");
        var player = first.Player;
        var again = new FakeTransport();
        var second = Make(again, new Clock(), new FileQueueStore(directory));  // the app restarted
        Equal(2, second.Queued, "read back");
        Equal(player, second.Player, "the same player");
        second.FlushAsync(force: true).Wait();
        True(again.Bodies[0].Contains("Complete:Tutorial"), "sent by the next run");
        Equal(0, new FileQueueStore(directory).Load().Count, "and gone from disk");
    }

    public static void TestOptOutSendsWhatCameBeforeAndDropsTheRest()
    {
        var transport = new FakeTransport();
        var client = Make(transport, new Clock());
        client.TrackDesign("Before:OptOut");
        client.SetOptOut(true);
        client.TrackDesign("After:OptOut");
        client.EndSessionAsync().Wait();
        var all = string.Join("", transport.Bodies);
        True(all.Contains("Before:OptOut"), "sent");
        True(!all.Contains("After:OptOut") && !all.Contains("Session:End"), "dropped at the source");
    }

    public static void TestEndSessionSendsSessionEndAndANewSessionStartsAfter()
    {
        var transport = new FakeTransport();
        var client = Make(transport, new Clock());
        client.TrackDesign("A:B");
        var first = client.Session;
        client.EndSessionAsync().Wait();
        True(transport.Bodies[0].Contains("\"name\":\"Session:End\""), "Session:End");
        client.TrackDesign("C:D");
        True(client.Session != null && client.Session != first, "a new session");
    }

    public static void TestIdentifyUserHashesAsTheWebSdkDoes()
    {
        Equal("46bcfd8aef0e494230952e6f99279aa7", GameClient.Cyrb128("user-abc"), "cyrb128 as in roost-game.mjs");
        Equal("4d57168d112df997450af49e19701b84", GameClient.Cyrb128("プレイヤー😀"), "UTF-16 units, as JavaScript counts");
        var client = Make(new FakeTransport(), new Clock());
        client.IdentifyUser("0123456789abcdef0123456789abcdef");
        Equal("0123456789abcdef0123456789abcdef", client.Player, "a hash already: kept");
    }

    public static void TestDataIsWrittenAsJson()
    {
        var e = new GameEvent
        {
            EventId = "e", BuildVersion = "1", SessionId = "s", PlayerHash = "p", Type = "error",
            Name = "Null\"Ref", Timestamp = new DateTime(2026, 3, 1, 0, 0, 0, DateTimeKind.Utc),
            Data = new Dictionary<string, object> { { "line", 12 }, { "fatal", true }, { "scene", "a\nb" }, { "none", null } },
        };
        Equal("{\"event_id\":\"e\",\"build_version\":\"1\",\"session_id\":\"s\",\"player_hash\":\"p\","
              + "\"ts\":\"2026-03-01T00:00:00.000Z\",\"type\":\"error\",\"name\":\"Null\\\"Ref\","
              + "\"data\":{\"line\":12,\"fatal\":true,\"scene\":\"a\\nb\",\"none\":null}}", e.ToJson(), "JSON");
    }

    // ---- against a live Roost (the Python side reads what arrived) ---------------------
    private static string Url { get { return Environment.GetEnvironmentVariable("ROOST_URL"); } }
    private static string Key { get { return Environment.GetEnvironmentVariable("ROOST_KEY"); } }

    public static void LiveEveryCallThroughTheStaticClient()
    {
        if (Url == null) return;
        OwlsignalClient.Initialize(Key, "unity-live-1.0", Url + "/api/v1/events");
        OwlsignalClient.IdentifyUser("unity-player");
        OwlsignalClient.TrackProgression("Start:Run", new TrackOptions { Dim01 = "forest" });
        OwlsignalClient.TrackDesign("CTA:Clicked", new TrackOptions { Dim01 = "pricing-pro" });
        OwlsignalClient.TrackResource("Source:Coins", 50);
        OwlsignalClient.TrackError("NullRef", new TrackOptions { Signature = "sig-unity", Data = OwlsignalClient.Data("stack", "at Foo.Bar:12") });
        OwlsignalClient.TrackProgression("Complete:Run", new TrackOptions { Dim01 = "forest", Value = 93.5 });
        OwlsignalClient.Shutdown(wait: TimeSpan.FromSeconds(10));
        Equal(0, OwlsignalClient.Client.Queued, "everything acknowledged");
    }

    public static void LiveAnOutageThenARestartLosesNothing()
    {
        if (Url == null) return;
        var directory = Path.Combine(Path.GetTempPath(), "roost-live-" + Guid.NewGuid());
        // Roost unreachable (a port nothing listens on): the events wait on disk
        var down = new GameClient(new GameSettings {
            ApiKey = Key, BuildVersion = "unity-outage-1.0", EndpointUrl = "http://127.0.0.1:9/api/v1/events",
            Store = new FileQueueStore(directory) });
        for (var i = 0; i < 5; i++) down.TrackDesign("Offline:Event" + i);
        down.FlushAsync(force: true).Wait();
        Equal(6, down.Queued, "kept through the outage");
        // the app quits and starts again with Roost back: the first Initialize sends them
        OwlsignalClient.Initialize(Key, "unity-outage-1.0", Url, directory);
        for (var i = 0; i < 100 && OwlsignalClient.Client.Queued > 0; i++) System.Threading.Thread.Sleep(50);
        Equal(0, OwlsignalClient.Client.Queued, "delivered by the next run");
        OwlsignalClient.Shutdown(sendSessionEnd: false);
    }
}
