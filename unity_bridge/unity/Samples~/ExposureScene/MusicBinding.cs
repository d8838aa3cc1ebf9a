// Sample: background music (`music` in spider.yaml: calm_music, ambient, silence). Cross-fades
// between clips over the transition.
using System;
using System.Collections.Generic;
using ExposureCtrl.Bridge;
using ExposureCtrl.Bridge.Protocol;
using UnityEngine;

namespace ExposureCtrl.Bridge.Samples
{
    public class MusicBinding : ParameterBinding
    {
        [Serializable]
        public class Track
        {
            public string value = "";
            public AudioClip clip;
        }

        public AudioSource source;
        public List<Track> tracks = new List<Track>();
        [Range(0f, 1f)] public float volume = 0.6f;

        public override void Apply(StateValue from, StateValue to, float t)
        {
            if (source == null) return;
            var target = t < 0.5f ? from : to;
            var clip = Clip(target.ToString());
            if (source.clip != clip)
            {
                source.clip = clip;
                if (clip != null) source.Play(); else source.Stop();
            }
            // fade out during the first half, in during the second (constant when not changing)
            bool changing = !from.Equals(to);
            source.volume = changing ? volume * Mathf.Abs(1f - 2f * t) : volume;
        }

        AudioClip Clip(string value)
        {
            foreach (var tr in tracks)
            {
                if (tr.value == value) return tr.clip;
            }
            return null;  // e.g. silence
        }
    }
}
