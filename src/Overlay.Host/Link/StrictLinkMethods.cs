using Google.Protobuf;
using Grpc.AspNetCore.Server.Model;
using Grpc.Core;
using Overlay.Errors;
using Overlay.Protocol.V1;

namespace Overlay.Host.Link;

/// <summary>
/// Registers the Link service's methods with request deserializers that refuse bytes that are not
/// protobuf as Malformed (InvalidArgument with the <c>overlay-error</c> trailer). gRPC deserializes a
/// unary request before any interceptor or handler runs and reports a parse failure as UNKNOWN; a
/// streamed request's parse failure surfaces from MoveNext, where the hop's pumps already handle a
/// typed refusal. The methods are the generated ones (captured from the generated binder), only the
/// request marshaller is wrapped.
/// </summary>
internal sealed class StrictLinkMethods : IServiceMethodProvider<LinkService>
{
    public void OnServiceMethodDiscovery(ServiceMethodProviderContext<LinkService> context)
    {
        var generated = new MethodCapture();
        Protocol.V1.Link.BindService(generated, null!);
        context.AddDuplexStreamingMethod(Strict(generated.Get<LinkMessage, LinkMessage>("Relay")), [],
            static (service, requests, responses, call) => service.Relay(requests, responses, call));
        context.AddUnaryMethod(Strict(generated.Get<DescriptorExchange, DescriptorExchange>("Exchange")), [],
            static (service, request, call) => service.Exchange(request, call));
        context.AddUnaryMethod(Strict(generated.Get<ProofRequest, ProofResponse>("Prove")), [],
            static (service, request, call) => service.Prove(request, call));
        context.AddUnaryMethod(Strict(generated.Get<JoinRequest, JoinResponse>("Join")), [],
            static (service, request, call) => service.Join(request, call));
    }

    private static Method<TRequest, TResponse> Strict<TRequest, TResponse>(Method<TRequest, TResponse> method)
        where TRequest : class
        where TResponse : class
    {
        var deserialize = method.RequestMarshaller.ContextualDeserializer;
        var strict = new Marshaller<TRequest>(method.RequestMarshaller.ContextualSerializer, context =>
        {
            try
            {
                return deserialize(context);
            }
            catch (InvalidProtocolBufferException)
            {
                // The peer's bytes, not a fault of ours: a typed refusal, without the parser's stack.
                throw LinkErrors.Refuse(TunnelErrorKind.Malformed);
            }
        });
        return new Method<TRequest, TResponse>(method.Type, method.ServiceName, method.Name, strict, method.ResponseMarshaller);
    }

    /// <summary>Collects the generated method descriptors by name.</summary>
    private sealed class MethodCapture : ServiceBinderBase
    {
        private readonly Dictionary<string, IMethod> _methods = new(StringComparer.Ordinal);

        public Method<TRequest, TResponse> Get<TRequest, TResponse>(string name)
            where TRequest : class
            where TResponse : class =>
            (Method<TRequest, TResponse>)_methods[name];

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
            _methods.Add(method.Name, method);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
            _methods.Add(method.Name, method);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
            _methods.Add(method.Name, method);

        public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
            _methods.Add(method.Name, method);
    }
}
