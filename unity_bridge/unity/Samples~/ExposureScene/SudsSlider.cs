// Sample: a SUDS slider (0-100) the patient moves in VR; the rating is sent when released
// (or after it rests for `settleSeconds`), not on every frame of the drag.
using ExposureCtrl.Bridge;
using UnityEngine;
using UnityEngine.UI;

namespace ExposureCtrl.Bridge.Samples
{
    public class SudsSlider : MonoBehaviour
    {
        public ExposureBridge bridge;
        public Slider slider;
        public float settleSeconds = 1.0f;

        int _lastSent = -1;
        float _changedAt = -1f;

        void Start()
        {
            if (slider == null) return;
            slider.minValue = 0;
            slider.maxValue = 100;
            slider.wholeNumbers = true;
            slider.onValueChanged.AddListener(v => _changedAt = Time.unscaledTime);
        }

        void Update()
        {
            if (slider == null || bridge == null || _changedAt < 0) return;
            if (Time.unscaledTime - _changedAt < settleSeconds) return;
            int v = Mathf.RoundToInt(slider.value);
            _changedAt = -1f;
            if (v == _lastSent) return;
            _lastSent = v;
            bridge.SendSuds(v);
        }
    }
}
