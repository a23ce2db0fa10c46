// The application every example is built from, by its bundler or by none:
// it imports diffcopy-web as an application would, starts it, and offers
// the test one upload of the picked file (`window.diffcopyUpload`), asking
// for 4 hashing workers, so that workers that cannot start are an error.
import init, { uploadFile, version } from "diffcopy-web";

init().then(() => {
  window.diffcopyUpload = async (serverUrl, path) => {
    const file = document.getElementById("file").files[0];
    const result = await uploadFile(file, { serverUrl, path, resume: false, workers: 4 });
    const { protocol, bytesSent, totalBytes, hashWorkers } = result;
    return { protocol, bytesSent, totalBytes, hashWorkers };
  };
  document.body.dataset.ready = version();
});
