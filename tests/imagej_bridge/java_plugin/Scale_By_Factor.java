import ij.ImagePlus;
import ij.gui.GenericDialog;
import ij.plugin.filter.PlugInFilter;
import ij.process.ImageProcessor;

/** A filter with a GenericDialog (like most ImageJ plugins): needs a display in plain ImageJ 1.x. */
public class Scale_By_Factor implements PlugInFilter {
    public int setup(String arg, ImagePlus imp) {
        return DOES_32 | DOES_16 | DOES_8G;
    }

    public void run(ImageProcessor ip) {
        GenericDialog gd = new GenericDialog("Scale By Factor");
        gd.addNumericField("factor", 2.0, 3);
        gd.showDialog();
        if (gd.wasCanceled()) return;
        decongan.helper.Scaler.scale(ip, gd.getNextNumber());
    }
}
