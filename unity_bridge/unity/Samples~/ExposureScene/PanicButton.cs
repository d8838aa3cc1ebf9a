// Sample: the patient's stop button. Wire `button` to a UI button and/or call Press() from a
// controller binding. The controller answers with `safe` within 100 ms (PROTOCOL.md rule 8);
// `fadeLocally` additionally dims the view at once, before the answer arrives.
using ExposureCtrl.Bridge;
using UnityEngine;
using UnityEngine.UI;

namespace ExposureCtrl.Bridge.Samples
{
    public class PanicButton : MonoBehaviour
    {
        public ExposureBridge bridge;
        public Button button;
        public GameObject fadeLocally;

        void Start()
        {
            if (button != null) button.onClick.AddListener(Press);
        }

        public void Press()
        {
            if (fadeLocally != null) fadeLocally.SetActive(true);
            if (bridge != null) bridge.SendPanic();
        }
    }
}
