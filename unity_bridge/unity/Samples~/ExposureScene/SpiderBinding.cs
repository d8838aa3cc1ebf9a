// Sample: the spider scenario (scenarios/spider.yaml). One component binds several parameters
// of the spider; add one SpiderBinding per parameter and pick the parameter in the inspector.
using System.Collections.Generic;
using ExposureCtrl.Bridge;
using ExposureCtrl.Bridge.Protocol;
using UnityEngine;

namespace ExposureCtrl.Bridge.Samples
{
    public class SpiderBinding : ParameterBinding
    {
        public Transform spider;
        public Renderer body;
        [Tooltip("jar: covered, closed, open, free")]
        public GameObject jarCover, jarLid, jarGlass;
        [Tooltip("distance_m: the spider moves along this axis from the patient's hands")]
        public Transform hands;

        static readonly Dictionary<string, float> Sizes = new Dictionary<string, float>
        {
            { "tiny", 0.3f }, { "small", 0.6f }, { "medium", 1.0f }, { "large", 1.6f }, { "huge", 2.5f },
        };

        static readonly Dictionary<string, Color> Colours = new Dictionary<string, Color>
        {
            { "light_brown", new Color(0.72f, 0.56f, 0.40f) },
            { "grey", new Color(0.5f, 0.5f, 0.5f) },
            { "brown", new Color(0.40f, 0.26f, 0.13f) },
            { "black", new Color(0.05f, 0.05f, 0.05f) },
        };

        public override void Apply(StateValue from, StateValue to, float t)
        {
            switch (parameterId)
            {
                case "size":
                {
                    float a = Size(from), b = Size(to);
                    if (spider != null) spider.localScale = Vector3.one * Mathf.Lerp(a, b, t);
                    break;
                }
                case "colour":
                {
                    Color a, b;
                    if (!Colours.TryGetValue(from.ToString(), out a)) a = Color.gray;
                    if (!Colours.TryGetValue(to.ToString(), out b)) b = a;
                    if (body != null) body.material.color = Color.Lerp(a, b, t);
                    break;
                }
                case "jar":
                {
                    string v = (t < 0.5f ? from : to).ToString();
                    if (jarCover != null) jarCover.SetActive(v == "covered");
                    if (jarLid != null) jarLid.SetActive(v == "covered" || v == "closed");
                    if (jarGlass != null) jarGlass.SetActive(v != "free");
                    break;
                }
                case "distance_m":
                {
                    float d = (float)(from.AsDouble + (to.AsDouble - from.AsDouble) * t);
                    if (spider != null && hands != null) spider.position = hands.position + hands.forward * d;
                    break;
                }
            }
        }

        static float Size(StateValue v)
        {
            float s;
            return Sizes.TryGetValue(v.ToString(), out s) ? s : 1f;
        }
    }
}
