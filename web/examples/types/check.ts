// Type-checked with `tsc --noEmit --strict` (apps.test.mjs): every type the
// package exports, used as an application would.
import init, {
  DeltaBlockHasher,
  SignatureHasher,
  deltaBlockHash,
  deltaHashBlob,
  diffSignatures,
  hashBlob,
  hashBlock,
  hashStrategy,
  initSync,
  signatureInfo,
  uploadFile,
  version,
} from "diffcopy-web";
import type {
  HashBlobOptions,
  HashName,
  HashStrategy,
  InitInput,
  InitOutput,
  SignatureDiff,
  SignatureInfo,
  SyncInitInput,
  UploadOptions,
  UploadPhase,
  UploadResult,
} from "diffcopy-web";

export async function everything(file: File, other: InitInput, sync: SyncInitInput): Promise<string> {
  const output: InitOutput = await init();
  void output;
  void other;
  void sync;
  void initSync;
  const name: HashName = "sha256";
  const strategy: HashStrategy = hashStrategy({ hash: name });
  const hashing: HashBlobOptions = { hash: name, blockSize: 1 << 20, workers: 2, onProgress: (done: number, total: number) => void (done + total) };
  const signature: Uint8Array = await hashBlob(file, hashing);
  const info: SignatureInfo = signatureInfo(signature);
  const diff: SignatureDiff = diffSignatures(signature, null);
  const digest: Uint8Array = hashBlock(name, new Uint8Array(4));
  const incremental = new SignatureHasher(name, 1 << 20);
  incremental.update(new Uint8Array(8));
  const finished: Uint8Array = incremental.finish();
  const delta = new DeltaBlockHasher(7n);
  delta.update(new Uint8Array(8));
  const block: Uint8Array = delta.finish();
  const one: Uint8Array = deltaBlockHash(7n, new Uint8Array(8));
  const hashes: Uint8Array = await deltaHashBlob(file, { blockSize: 1 << 20, seed: "0000000000000007" });
  const options: UploadOptions = {
    serverUrl: "https://files.example.com",
    path: "users/42/a.bin",
    token: async () => "a token",
    onProgress: (phase: UploadPhase, done: number, total: number) => void [phase, done, total],
    signal: new AbortController().signal,
  };
  const result: UploadResult = await uploadFile(file, options);
  return [strategy, info.blockSize, diff.bytesToSend, digest.length, finished.length, block.length, one.length,
    hashes.length, result.bytesSent, result.hashWorkers, version()].join();
}
