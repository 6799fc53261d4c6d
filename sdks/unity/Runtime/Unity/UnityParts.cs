// The two Unity-only pieces: sending with UnityWebRequest (what every Unity platform has, WebGL
// included) and a hidden MonoBehaviour that ticks the client and ends the session on quit or
// pause. Compiled only inside Unity (UNITY_5_3_OR_NEWER): the core builds and is tested
// without them (README: not run inside Unity here).
#if UNITY_5_3_OR_NEWER
using System.Text;
using System.Threading.Tasks;
using UnityEngine;
using UnityEngine.Networking;

namespace Roost.Game
{
    public sealed class UnityWebRequestTransport : ITransport
    {
        public Task<int> SendAsync(string url, string apiKey, string body)
        {
            var done = new TaskCompletionSource<int>();
            var request = new UnityWebRequest(url, "POST")
            {
                uploadHandler = new UploadHandlerRaw(Encoding.UTF8.GetBytes(body)),
                downloadHandler = new DownloadHandlerBuffer(),
                timeout = 15,
            };
            request.SetRequestHeader("Content-Type", "application/json");
            request.SetRequestHeader("Authorization", "Bearer " + apiKey);
            var operation = request.SendWebRequest();
            operation.completed += _ =>
            {
                var status = request.result == UnityWebRequest.Result.ConnectionError ? 0 : (int)request.responseCode;
                request.Dispose();
                done.TrySetResult(status);
            };
            return done.Task;
        }
    }

    [AddComponentMenu("")]
    internal sealed class RoostRunner : MonoBehaviour
    {
        private static RoostRunner _instance;

        public static void Ensure()
        {
            if (_instance != null) return;
            var holder = new GameObject("Roost") { hideFlags = HideFlags.HideAndDontSave };
            DontDestroyOnLoad(holder);
            _instance = holder.AddComponent<RoostRunner>();
        }

        private void Update()
        {
            var client = OwlsignalClient.Client;
            if (client != null) { _ = client.TickAsync(); }
        }

        private void OnApplicationPause(bool paused)
        {
            // mobile: the app may never come back; what is waiting is on disk either way
            var client = OwlsignalClient.Client;
            if (paused && client != null) { _ = client.EndSessionAsync(); }
        }

        private void OnApplicationQuit() { OwlsignalClient.Shutdown(); }
    }
}
#endif
