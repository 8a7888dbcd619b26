package decongan.helper;

import ij.process.ImageProcessor;

/** Lives in plugins/jars/ of the test ImageJ folder: checks that plugin dependencies are loaded. */
public class Scaler {
    public static void scale(ImageProcessor ip, double factor) {
        ip.multiply(factor);
    }

    public static void add(ImageProcessor ip, double value) {
        ip.add(value);
    }
}
