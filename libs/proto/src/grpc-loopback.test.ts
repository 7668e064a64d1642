import { generateKeyPairSync, sign, verify } from "node:crypto";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { ReflectionService } from "@grpc/reflection";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileDescriptorSet } from "./descriptors.js";
import { encodeStatusDetails, errorDetailFromMetadata, STATUS_DETAILS_KEY } from "./error-detail.js";
import { FileDescriptorProto } from "./gen/google/protobuf/descriptor.js";
import {
  type AuthServiceClient,
  AuthServiceDefinition,
  auth,
  type Channel,
  ClientError,
  common,
  createChannel,
  createClient,
  type DeliveryServiceClient,
  DeliveryServiceDefinition,
  delivery,
  type FederationProxyServiceClient,
  FederationProxyServiceDefinition,
  type FederationServiceClient,
  FederationServiceDefinition,
  federation,
  type Metadata,
  type QueueServiceClient,
  QueueServiceDefinition,
  queue,
  Status,
} from "./index.js";
import { decodeTbs, requestHeader, rpcLabel, signTbs, type TbsSigner } from "./signing.js";

// A stand-in for libs/crypto's labelled signing, enough to show that the exact tbs bytes are
// what gets verified on the server.
const clientKey = generateKeyPairSync("ed25519");
function labelled(label: string, tbs: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`Phoenix${label}`), tbs]);
}
const signer: TbsSigner = (label, tbs) =>
  new Uint8Array(sign(null, labelled(label, tbs), clientKey.privateKey));
function verifySigned(label: string, signed: common.Signed | undefined): boolean {
  return (
    signed !== undefined && verify(null, labelled(label, signed.tbs), clientKey.publicKey, signed.signature)
  );
}

/** Handlers that answer UNIMPLEMENTED for every method of a generated service definition. */
function unimplemented(definition: grpc.ServiceDefinition): grpc.UntypedServiceImplementation {
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name, method] of Object.entries(definition)) {
    const error = { code: grpc.status.UNIMPLEMENTED, details: `${method.path} is not served here` };
    impl[name] = method.responseStream
      ? (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit("error", error)
      : (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
          callback(error);
  }
  return impl;
}

function queueMessage(sequenceNumber: bigint): queue.ListenResponse {
  const ciphertext = new Uint8Array([0xc0, Number(sequenceNumber)]);
  return { event: { $case: "message", value: { sequenceNumber, ciphertext } } };
}

const authImpl: Partial<auth.AuthServiceServer> = {
  registerUser(call, callback) {
    const label = rpcLabel(auth.AuthServiceService.registerUser);
    const signed = call.request.signed;
    if (!verifySigned(label, signed) || !signed) {
      callback({ code: grpc.status.UNAUTHENTICATED, details: "RegisterUser: signature does not verify" });
      return;
    }
    const tbs = decodeTbs(auth.RegisterUserTbs, signed);
    if (tbs.header?.label !== label) {
      callback({ code: grpc.status.UNAUTHENTICATED, details: "RegisterUser: wrong label" });
      return;
    }
    callback(null, { clientCredential: Buffer.concat([Buffer.from("credential:"), tbs.clientCsr]) });
  },
};

const deliveryImpl: Partial<delivery.DeliveryServiceServer> = {
  sendMessage(_call, callback) {
    const metadata = new grpc.Metadata();
    const detail = {
      reason: common.ErrorReason.ERROR_REASON_WRONG_EPOCH,
      detail: { $case: "wrongEpoch" as const, value: { currentEpoch: 7n, requestEpoch: 6n } },
    };
    const message = "SendMessage: message is for epoch 6, the group is at epoch 7";
    metadata.set(
      STATUS_DETAILS_KEY,
      Buffer.from(encodeStatusDetails(grpc.status.FAILED_PRECONDITION, message, detail)),
    );
    callback({ code: grpc.status.FAILED_PRECONDITION, details: message, metadata });
  },
};

const queueImpl: Partial<queue.QueueServiceServer> = {
  listen(call) {
    let listening = false;
    call.on("data", (request: queue.ListenRequest) => {
      const r = request.request;
      if (r?.$case === "init") {
        if (!verifySigned(rpcLabel(queue.QueueServiceService.listen), r.value)) {
          call.emit("error", { code: grpc.status.UNAUTHENTICATED, details: "Listen: bad signature" });
          return;
        }
        listening = true;
        call.write(queueMessage(0n));
        call.write(queueMessage(1n));
        call.write({ event: { $case: "empty", value: {} } });
      } else if (r?.$case === "ack" && listening) {
        // A message arriving while the client listens.
        call.write(queueMessage(r.value.upToSequenceNumber));
      }
    });
    call.on("end", () => call.end());
  },
};

const federationImpl: Partial<federation.FederationServiceServer> = {
  forward(call, callback) {
    const tbs = call.request.signed ? decodeTbs(federation.ForwardTbs, call.request.signed) : undefined;
    // Echo the inner request untouched, as a gateway passes bytes through.
    callback(null, { response: tbs?.request ?? new Uint8Array() });
  },
};

describe("generated services over loopback: grpc-js servers, nice-grpc clients", () => {
  const server = new grpc.Server();
  let address = "";
  let channel: Channel | undefined;
  let authClient: AuthServiceClient;
  let deliveryClient: DeliveryServiceClient;
  let queueClient: QueueServiceClient;
  let federationClient: FederationServiceClient;
  let proxyClient: FederationProxyServiceClient;

  beforeAll(async () => {
    const services: [grpc.ServiceDefinition, object][] = [
      [auth.AuthServiceService, authImpl],
      [delivery.DeliveryServiceService, deliveryImpl],
      [queue.QueueServiceService, queueImpl],
      [federation.FederationServiceService, federationImpl],
      [federation.FederationProxyServiceService, {}],
    ];
    for (const [definition, impl] of services)
      server.addService(definition, { ...unimplemented(definition), ...impl });
    new ReflectionService(
      protoLoader.loadFileDescriptorSetFromBuffer(Buffer.from(fileDescriptorSet())),
    ).addToServer(server);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    address = `127.0.0.1:${port}`;
    channel = createChannel(address);
    authClient = createClient(AuthServiceDefinition, channel);
    deliveryClient = createClient(DeliveryServiceDefinition, channel);
    queueClient = createClient(QueueServiceDefinition, channel);
    federationClient = createClient(FederationServiceDefinition, channel);
    proxyClient = createClient(FederationProxyServiceDefinition, channel);
  });

  afterAll(() => {
    channel?.close();
    server.forceShutdown();
  });

  async function registerRequest(): Promise<auth.RegisterUserRequest> {
    const clientId = {
      user: { uuid: new Uint8Array(16).fill(1), domain: "alpha.example" },
      clientUuid: new Uint8Array(16).fill(2),
    };
    const tbs: auth.RegisterUserTbs = {
      header: requestHeader(rpcLabel(auth.AuthServiceService.registerUser), {
        $case: "client",
        value: clientId,
      }),
      clientCsr: new Uint8Array([1, 2, 3]),
      encryptedUserProfile: new Uint8Array([4, 5]),
      connectionQueueEncryptionKey: new Uint8Array(32),
      inviteCode: "",
    };
    return { signed: await signTbs(auth.RegisterUserTbs, tbs, signer) };
  }

  it("answers a signed unary call (AuthService.RegisterUser) and refuses a tampered one", async () => {
    const request = await registerRequest();
    const response = await authClient.registerUser(request, { signal: AbortSignal.timeout(10_000) });
    expect(Buffer.from(response.clientCredential).toString()).toBe("credential:\u0001\u0002\u0003");

    const tampered = await registerRequest();
    const tbs = tampered.signed?.tbs;
    if (tbs) tbs[tbs.length - 1] = (tbs.at(-1) ?? 0) ^ 1;
    const error = await authClient.registerUser(tampered).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClientError);
    expect((error as ClientError).code).toBe(Status.UNAUTHENTICATED);
  });

  it("delivers an error detail (wrong epoch) in the status trailer", async () => {
    let trailer: Metadata | undefined;
    const error = await deliveryClient
      .sendMessage(
        { signed: undefined, groupStateEarKey: new Uint8Array(32) },
        { onTrailer: (received) => (trailer = received) },
      )
      .catch((e: unknown) => e);
    expect((error as ClientError).code).toBe(Status.FAILED_PRECONDITION);
    expect(errorDetailFromMetadata(trailer)?.detail).toEqual({
      $case: "wrongEpoch",
      value: { currentEpoch: 7n, requestEpoch: 6n },
    });
  });

  it("streams a QueueService.Listen: queued messages, the empty marker, acks and new messages", async () => {
    const tbs: queue.ListenTbs = {
      header: requestHeader(rpcLabel(queue.QueueServiceService.listen), {
        $case: "qsClientId",
        value: new Uint8Array(16).fill(9),
      }),
      sequenceNumberStart: 0n,
    };
    const init = await signTbs(queue.ListenTbs, tbs, signer);
    let drained = () => {};
    const sawEmpty = new Promise<void>((resolve) => (drained = resolve));
    let last = () => {};
    const sawLast = new Promise<void>((resolve) => (last = resolve));
    // The requests: init, the ack once drained; ending them (after message 2) half-closes.
    async function* requests(): AsyncGenerator<queue.ListenRequest> {
      yield { request: { $case: "init", value: init } };
      await sawEmpty;
      yield { request: { $case: "ack", value: { upToSequenceNumber: 2n } } };
      await sawLast;
    }
    const received: string[] = [];
    for await (const response of queueClient.listen(requests())) {
      const event = response.event;
      if (event?.$case === "message") {
        received.push(`message ${event.value.sequenceNumber}`);
        if (event.value.sequenceNumber === 2n) last();
      } else if (event?.$case === "empty") {
        received.push("empty");
        drained();
      }
    }
    expect(received).toEqual(["message 0", "message 1", "empty", "message 2"]);
  });

  it("passes forwarded request bytes through FederationService.Forward unchanged", async () => {
    const inner = delivery.SendMessageRequest.encode({
      signed: { tbs: new Uint8Array([8, 1]), signature: new Uint8Array(64).fill(3) },
      groupStateEarKey: new Uint8Array(32).fill(4),
    }).finish();
    const tbs: federation.ForwardTbs = {
      header: requestHeader(rpcLabel(federation.FederationServiceService.forward), {
        $case: "domain",
        value: "beta.example",
      }),
      destinationDomain: "alpha.example",
      method: delivery.DeliveryServiceService.sendMessage.path,
      request: inner,
    };
    const signed = await signTbs(federation.ForwardTbs, tbs, signer);
    const response = await federationClient.forward({ signed });
    // Decoded bytes are views into grpc-js's Buffer; compare contents, not classes.
    expect(new Uint8Array(response.response)).toEqual(inner);
  });

  it("answers UNIMPLEMENTED for methods without a handler", async () => {
    const error = await proxyClient
      .proxy({ destinationDomain: "beta.example", method: "/x/y", request: new Uint8Array() })
      .catch((e: unknown) => e);
    expect((error as ClientError).code).toBe(Status.UNIMPLEMENTED);
  });

  it("serves reflection from the embedded descriptor set", async () => {
    const require = createRequire(import.meta.url);
    const reflectionProto = join(
      dirname(require.resolve("@grpc/reflection/package.json")),
      "build/proto/grpc/reflection/v1/reflection.proto",
    );
    const definition = protoLoader.loadSync(reflectionProto, { keepCase: true, oneofs: true });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const client = new loaded.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
    type ReflectionResponse = {
      list_services_response?: { service: { name: string }[] };
      file_descriptor_response?: { file_descriptor_proto: Buffer[] };
    };
    const responses: ReflectionResponse[] = [];
    try {
      const call = (
        client.ServerReflectionInfo as () => grpc.ClientDuplexStream<object, ReflectionResponse>
      )();
      const done = new Promise<void>((resolve, reject) => {
        call.on("data", (r: ReflectionResponse) => {
          responses.push(r);
          if (responses.length === 2) call.end();
        });
        call.on("error", reject);
        call.on("end", () => resolve());
      });
      call.write({ list_services: "*" });
      call.write({ file_containing_symbol: "phoenix.delivery.v1.DeliveryService" });
      await done;
    } finally {
      client.close();
    }
    const names = responses[0]?.list_services_response?.service.map((s) => s.name) ?? [];
    expect(names).toEqual(
      expect.arrayContaining([
        "phoenix.auth.v1.AuthService",
        "phoenix.delivery.v1.DeliveryService",
        "phoenix.queue.v1.QueueService",
        "phoenix.federation.v1.FederationService",
      ]),
    );
    const files = (responses[1]?.file_descriptor_response?.file_descriptor_proto ?? []).map((b) =>
      FileDescriptorProto.decode(b),
    );
    const deliveryFile = files.find((f) => f.name === "phoenix/delivery/v1/delivery.proto");
    expect(deliveryFile?.service.map((s) => s.name)).toEqual(["DeliveryService"]);
  });
});
