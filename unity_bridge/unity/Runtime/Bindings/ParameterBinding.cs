// Bindings map one scenario parameter's value to scene objects. ExposureBridge calls Apply every
// frame with the value faded from, the value faded to and the progress 0..1 of the transition.
using System;
using System.Collections.Generic;
using ExposureCtrl.Bridge.Protocol;
using UnityEngine;
using UnityEngine.Events;

namespace ExposureCtrl.Bridge
{
    public abstract class ParameterBinding : MonoBehaviour
    {
        [Tooltip("The parameter id in the scenario YAML, e.g. jar, distance_m, audience, music.")]
        public string parameterId = "";

        public abstract void Apply(StateValue from, StateValue to, float progress);
    }

    /// <summary>A categorical or ordinal parameter: one GameObject per value, the one of the
    /// current value active (switching halfway through a transition).</summary>
    [AddComponentMenu("Exposure Ctrl/Level Objects Binding")]
    public class LevelObjectsBinding : ParameterBinding
    {
        [Serializable]
        public class Level
        {
            public string value = "";
            public GameObject target;
        }

        public List<Level> levels = new List<Level>();

        public override void Apply(StateValue from, StateValue to, float progress)
        {
            string shown = (progress < 0.5f ? from : to).ToString();
            foreach (var l in levels)
            {
                if (l.target != null) l.target.SetActive(l.value == shown);
            }
        }
    }

    /// <summary>A continuous parameter: the value is interpolated and passed to onValue
    /// (wire it to a position, a volume, an animator speed...).</summary>
    [AddComponentMenu("Exposure Ctrl/Number Binding")]
    public class NumberBinding : ParameterBinding
    {
        public UnityEvent<float> onValue = new UnityEvent<float>();

        public override void Apply(StateValue from, StateValue to, float progress)
        {
            double a = from.AsDouble, b = to.AsDouble;
            if (double.IsNaN(a)) a = b;
            onValue.Invoke((float)(a + (b - a) * progress));
        }
    }
}
