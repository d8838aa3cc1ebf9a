// Sample: the public-speaking scenario (scenarios/public_speaking.yaml): `audience` sets how
// many listeners are present; `attitude` drives an Animator parameter on each of them.
using System.Collections.Generic;
using ExposureCtrl.Bridge;
using ExposureCtrl.Bridge.Protocol;
using UnityEngine;

namespace ExposureCtrl.Bridge.Samples
{
    public class AudienceBinding : ParameterBinding
    {
        [Tooltip("Listeners in the order they appear (the first one appears first).")]
        public List<GameObject> listeners = new List<GameObject>();

        static readonly Dictionary<string, int> Counts = new Dictionary<string, int>
        {
            { "empty", 0 }, { "one", 1 }, { "three", 3 }, { "six", 6 }, { "fifteen", 15 }, { "fifty", 50 },
        };

        static readonly Dictionary<string, int> Attitudes = new Dictionary<string, int>
        {
            { "attentive", 0 }, { "neutral", 1 }, { "bored", 2 }, { "critical", 3 },
        };

        public override void Apply(StateValue from, StateValue to, float t)
        {
            if (parameterId == "audience")
            {
                int a = Count(from), b = Count(to);
                int n = Mathf.RoundToInt(Mathf.Lerp(a, b, t));  // listeners walk in (or out) one by one
                for (int i = 0; i < listeners.Count; i++)
                {
                    if (listeners[i] != null) listeners[i].SetActive(i < n);
                }
            }
            else if (parameterId == "attitude")
            {
                int code;
                if (!Attitudes.TryGetValue((t < 0.5f ? from : to).ToString(), out code)) code = 1;
                foreach (var l in listeners)
                {
                    if (l == null) continue;
                    var animator = l.GetComponent<Animator>();
                    if (animator != null) animator.SetInteger("Attitude", code);
                }
            }
        }

        static int Count(StateValue v)
        {
            int n;
            return Counts.TryGetValue(v.ToString(), out n) ? n : 0;
        }
    }
}
