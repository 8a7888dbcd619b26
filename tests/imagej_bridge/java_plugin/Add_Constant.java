import ij.IJ;
import ij.ImagePlus;
import ij.Macro;
import ij.plugin.PlugIn;

/** Reads its macro options itself, like TurboReg and DeconvolutionLab2: runs headless too. */
public class Add_Constant implements PlugIn {
    public void run(String arg) {
        String options = Macro.getOptions();
        double value = Double.parseDouble(Macro.getValue(options == null ? "" : options, "value", "0"));
        ImagePlus imp = IJ.getImage();
        decongan.helper.Scaler.add(imp.getProcessor(), value);
        imp.updateAndDraw();
    }
}
