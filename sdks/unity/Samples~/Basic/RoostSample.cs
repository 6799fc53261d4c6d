// Attach to a GameObject in your first scene; set the key and the URL in the inspector.
using Roost.Game;
using UnityEngine;

public sealed class RoostSample : MonoBehaviour
{
    [SerializeField] private string apiKey = "rw_...";
    [SerializeField] private string endpointUrl = "http://127.0.0.1:8000/api/v1/events";

    private void Awake()
    {
        OwlsignalClient.Initialize(apiKey, Application.version, endpointUrl);
        OwlsignalClient.TrackProgression("Start:Tutorial");
    }

    public void OnTutorialDone(float seconds)
    {
        OwlsignalClient.TrackProgression("Complete:Tutorial", new TrackOptions { Value = seconds });
    }

    public void OnCoinsEarned(int coins)
    {
        OwlsignalClient.TrackResource("Source:Coins", coins);
    }

    public void OnOptOutToggled(bool off)
    {
        OwlsignalClient.SetOptOut(off);
    }
}
