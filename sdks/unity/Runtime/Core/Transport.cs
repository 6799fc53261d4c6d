// How a batch reaches Roost: an interface, so Unity sends with UnityWebRequest
// (Runtime/Unity) and everything else with HttpClient.
using System;
using System.Net.Http;
using System.Text;
using System.Threading.Tasks;

namespace Roost.Game
{
    public interface ITransport
    {
        /// <summary>POST the JSON body with the key as a Bearer token; the HTTP status, or 0
        /// when the request did not get an answer (no network, refused, timed out).</summary>
        Task<int> SendAsync(string url, string apiKey, string body);
    }

    public sealed class HttpClientTransport : ITransport
    {
        private readonly HttpClient _client;

        public HttpClientTransport(TimeSpan? timeout = null)
        {
            _client = new HttpClient { Timeout = timeout ?? TimeSpan.FromSeconds(15) };
        }

        public async Task<int> SendAsync(string url, string apiKey, string body)
        {
            try
            {
                var request = new HttpRequestMessage(HttpMethod.Post, url)
                {
                    Content = new StringContent(body, Encoding.UTF8, "application/json"),
                };
                request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + apiKey);
                using (var response = await _client.SendAsync(request).ConfigureAwait(false))
                {
                    return (int)response.StatusCode;
                }
            }
            catch (Exception)
            {
                return 0;  // the network: the batch is kept and tried again
            }
        }
    }
}
